#!/usr/bin/env python3
"""Runs the Python blocks of docs/pytorch.md, in order, on a record:

    python3 scripts/run_pytorch_doc.py RECORD.toml

(needs torch and safetensors). Keeps the recipe honest: its asserts check the record's
losses and S, and it prints the Hessian and retraining agreement.
"""
import re
import sys
from pathlib import Path

doc = Path(__file__).resolve().parent.parent / "docs" / "pytorch.md"
blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
if len(sys.argv) != 2:
    sys.exit(__doc__)
exec(compile("\n".join(blocks), str(doc), "exec"), {"RECORD": sys.argv[1], "__name__": "__doc__"})
print("docs/pytorch.md: every block ran and its checks held")
