// The playground's editor: CodeMirror 6 with a highlighting mode per livexec runtime.
// Bundled by build.sh into crates/api/assets/playground/editor.js (an IIFE that sets
// window.LivexecEditor); the page never loads anything from the network.
import { EditorView, basicSetup } from "codemirror";
import { keymap } from "@codemirror/view";
import { Compartment, Prec } from "@codemirror/state";
import { StreamLanguage } from "@codemirror/language";
import { python } from "@codemirror/lang-python";
import { javascript } from "@codemirror/lang-javascript";
import { cpp } from "@codemirror/lang-cpp";
import { java } from "@codemirror/lang-java";
import { rust } from "@codemirror/lang-rust";
import { go } from "@codemirror/lang-go";
import { php } from "@codemirror/lang-php";
import { sql } from "@codemirror/lang-sql";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { lua } from "@codemirror/legacy-modes/mode/lua";
import { perl } from "@codemirror/legacy-modes/mode/perl";
import { ruby } from "@codemirror/legacy-modes/mode/ruby";

// By the runtime's `language` (several runtime ids may share one).
const modes = {
  python: () => python(),
  javascript: () => javascript(),
  typescript: () => javascript({ typescript: true }),
  c: () => cpp(),
  cpp: () => cpp(),
  java: () => java(),
  rust: () => rust(),
  go: () => go(),
  php: () => php({ plain: false }),
  sql: () => sql(),
  bash: () => StreamLanguage.define(shell),
  lua: () => StreamLanguage.define(lua),
  perl: () => StreamLanguage.define(perl),
  ruby: () => StreamLanguage.define(ruby),
};

function mode(language) {
  const make = modes[language];
  return make ? make() : [];
}

// create(parent, doc, language, onRun) → { get(), set(text), setLanguage(language) }
export function create(parent, doc, language, onRun) {
  const lang = new Compartment();
  const run = () => {
    onRun();
    return true;
  };
  const view = new EditorView({
    doc,
    parent,
    extensions: [
      basicSetup,
      lang.of(mode(language)),
      Prec.highest(keymap.of([{ key: "Mod-Enter", run }])),
    ],
  });
  return {
    view,
    get: () => view.state.doc.toString(),
    set: (text) =>
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    setLanguage: (language) => view.dispatch({ effects: lang.reconfigure(mode(language)) }),
  };
}
