"""Write the API's OpenAPI schema to web/openapi.json, from which the TypeScript client is generated.

    python scripts/export_openapi.py          # write it
    python scripts/export_openapi.py --check  # exit 1 if the checked-in file is stale

The schema does not depend on the model, so a tiny random one stands in (no weights needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mechscope.server.app import openapi_schema

OUT = Path(__file__).resolve().parent.parent / "web" / "openapi.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n"
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            sys.exit(f"{OUT} is stale: run python scripts/export_openapi.py, then npm run gen:client in web/")
        return
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
