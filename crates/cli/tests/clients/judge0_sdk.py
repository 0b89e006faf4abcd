"""The official Judge0 Python SDK (judge0 0.0.8) against a livexec server.

Usage: judge0_sdk.py BASE_URL CASE. Prints one JSON line with what the SDK returned; the Rust
test (crates/cli/tests/compat.rs) checks it.
"""
import json
import sys

import judge0

base, case = sys.argv[1], sys.argv[2]
client = judge0.Client(base, headers={"X-Auth-Token": "ignored"})


def sub(s):
    return {
        "stdout": s.stdout,
        "stderr": s.stderr,
        "status": s.status.value if s.status is not None else None,
        "time": s.time,
        "memory": s.memory,
        "token": s.token,
    }


if case == "hello":
    r = judge0.run(client=client, source_code="print('hello, world')", language=judge0.PYTHON)
    print(json.dumps(sub(r)))
elif case == "cpp_tests":
    code = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<std::endl;}\n"
    rs = judge0.run(
        client=client,
        source_code=code,
        language=judge0.CPP,
        test_cases=[("1 2", "3"), ("20 22", "42"), ("2 2", "5")],
    )
    print(json.dumps([sub(r) for r in rs]))
elif case == "stdin":
    r = judge0.run(client=client, source_code="print(input()[::-1])", stdin="abc", language=judge0.PYTHON)
    print(json.dumps(sub(r)))
elif case == "info":
    print(json.dumps({
        "version": client.version,
        "languages": len(client.get_languages()),
        "statuses": len(client.get_statuses()),
        "batch": client.config.max_submission_batch_size,
    }))
else:
    sys.exit(f"unknown case {case}")
