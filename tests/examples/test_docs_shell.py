"""Every shell block of the README and of each docs page, pasted in order into one bash.

Each page runs against its own fresh `bulksim serve`, as `make run` starts it (system clock,
seed 0), on a free port that replaces 8700 in the blocks. The blocks run in a scratch directory
holding `fixtures/` and `.venv/bin/bulksim`, as in a clone. Each block must finish without a
failing command (``set -e -o pipefail``), and its output must show what the page says it shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(?:sh|bash|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

Expected = list[str | re.Pattern[str]]


@dataclass(frozen=True)
class Page:
    """What is run of one page: the blocks skipped (with why) and what blocks must print."""

    skipped: dict[str, str] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=dict)


SEED_LOOP = 'PROCESS_ID="627d21f7-e1a0-4085-84cb-130906cd097c"'

# Per page: the blocks that cannot run here, each found by a line of it, with the reason; and
# what a block's output must show, each also shown on the page (in the block's comments or the
# output printed after it). Values that depend on the time or on ids are left out.

README_SKIPPED: dict[str, str] = {
    "make run    #": "starts the simulator this test starts itself; `make test` runs this test",
    'pip install "git+': "installs bulksim",
}

README_EXPECTED: dict[str, Expected] = {
    '"kind": "rate_limit", "retry_after": 5': [
        "429 Retry-After: 5",
        '{"operation":"authorize","fault":"rate_limit:retry_after=5",',
    ],
    "verify --provider deepvue --base-url http://127.0.0.1:8700/deepvue": [
        "no drift: 5 checks passed",
    ],
    "/_sim/sandboxes/$SANDBOX/clock/advance": [
        '{"kind":"manual","now":"2030-01-01T00:01:00Z","epoch_ms":1893456060000}',
    ],
}

CONTROL_PLANE_EXPECTED: dict[str, Expected] = {
    '"kind": "error", "error": "InternalServerError", "count": 2}': [
        '"kind":"error","error":"InternalServerError"',
        '{"cleared":1}',
    ],
}

HARNESS_SKIPPED: dict[str, str] = {
    ".venv/bin/bulksim verify --provider deepvue --base-url https://": "calls the real Deepvue",
    "--drift deepvue.": "starts a second simulator on a fixed port; tests/contracts cover drift",
}

HARNESS_EXPECTED: dict[str, Expected] = {
    "# against bulksim (a fresh `make run`)": ["no drift: 5 checks passed"],
}

DEEPVUE_EXPECTED: dict[str, Expected] = {
    "BASE=http://127.0.0.1:8700/deepvue": [
        '{"reset":["deepvue"]}',
        '{"status":201,"message":"batch processing in progress"}',
        '{"status":200,"message":"batch processing completed"}',
        "vpa,name,status,account_exists,name_at_bank,name_at_bank_cleaned,message",
        "rahul.sharma@okaxis,Rahul Sharma,SUCCESS,true,RAHUL SHARMA,Rahul Sharma,VPA is valid",
        "9876543210@paytm,,SUCCESS,true,",
        "noaccount.anil@ybl,Anil Kumar,SUCCESS,false,,,VPA does not exist",
    ],
    "request_id=06d0d7c340ed460d96103aaa0b26f0de": ['"sub_code":"SUCCESS"', '"status":200'],
}

PASSCREATOR_EXPECTED: dict[str, Expected] = {
    "PC=http://127.0.0.1:8700/passcreator": [
        '{"reset":["passcreator"]}',
        '"total":1000,',
        '"status":"in progress","errors":null}',
    ],
    "-d @bulk.json": ['"total":5000,', '"status":"in progress","errors":null}'],
    'operator: "equals", value: ["walk-7"]': [
        '{"identifier":"fbf5f14e-2f10-41f8-8047-da3af77b3e61","userProvidedId":"walk-7",'
        '"barcodeValue":"5f440ae033a5d0.83755453","firstname":"Guest 7",'
    ],
    '"tier": "gold"': [
        '{"current":4998,"total":4998,',
        '"status":"finished","errors":null}',
        "gold",
        '"errors":["userProvidedId member-0001 is already in use."]',
    ],
    "/api/v3/process/00000000-0000-4000-8000-000000000000": [
        '{"statusCode":404,"success":false,"description":"Not Found","errors":["Object not found"]',
        '{"statusCode":401,"success":false,"description":"Unauthorized","errors":["Invalid API key.'
        ' Send the API key itself in the Authorization header, without a Bearer prefix."]',
    ],
    SEED_LOOP: [
        "Progress: 1000/1000 - Status: finished\nProcess completed!",
    ],
}

HELLOATLAS_SKIPPED: dict[str, str] = {
    "> million.json": "an 85 MB upload; tests/providers/helloatlas/test_lazy.py covers it",
}

HELLOATLAS_EXPECTED: dict[str, Expected] = {
    "BASE=http://127.0.0.1:8700/helloatlas": [
        '{"reset":["helloatlas"]}',
        '"file_data": null',
        '"document_type": "AADHAAR"',
        '"document_type": "PAN"',
        '"total_pages": 2',
        '"has_next": true',
        re.compile(r'"type":"PASSPORT","confidence":0\.[345][0-9]?,'),
        '{"document_id":"4","type":null,"confidence":null,"error_code":"422",'
        '"error_message":"Unprocessable: Unable to extract data from the document"}',
        '{"error_code":"401","error_message":"Authentication Error: Token has expired"}',
    ],
    "batch_id=BATCH-69469-BBRSS-20260309081408": ["D MANIKANDAN DURAISAMY"],
}

CHECK_EXPECTED: dict[str, Expected] = {
    "BASE=http://127.0.0.1:8700/check": [
        '{"reset":["check"]}',
        '"originalFileName":"claims.csv","format":"csv","itemCount":87,',
        '"validationErrors":[],',
        '"message":"File uploaded successfully"}',
        '"itemCount":85,"validationErrors":[{"row":12,"error":"Content is empty, row skipped"},',
        '{"row":45,"error":"Content exceeds maximum length (50000 chars), row skipped"}],',
        '{"error":{"code":"conflict","message":"File has already been used to create a batch.',
        '"status":"processing","totalItems":87,',
        '"status":"completed","totalItems":87,"processedItems":87,"successCount":87,"failureCount":0,',
        '"totalCostCents":870,',
        '"items":[{"id":"item_001","itemIndex":0,"idempotencyKey":"claim-001",',
        '"costCents":10,',
        '"pagination":{"total":87,"limit":2,"offset":0,"hasMore":true}}',
        '"status":"cancelled","message":"Batch cancelled successfully"}',
        '{"error":{"code":"CANNOT_CANCEL","message":"Cannot cancel batch. Batch not found or'
        ' already completed/cancelled."}}',
        '"verdict":"false","confidence":0.91,"decision":"reject"',
        '"errorMessage":"Verification timeout after 120 seconds",',
        '"retryCount":3}',
        "x-ratelimit-limit: 200",
        "x-ratelimit-remaining: ",
        "x-ratelimit-reset: ",
        '{"error":{"code":"unauthorized","message":"API key is required. Include it in the'
        " Authorization header as 'Bearer vfy_...'\"}} 401",
        '{"error":{"code":"quota_exceeded","message":"Batch processing is not available on the'
        ' free plan."}} 402',
        '{"error":{"code":"validation_error","message":"File is required. Use form field name'
        ' \\"file\\"."}} 400',
        '{"error":"File parsing failed","validationErrors":[{"row":1,"error":"Missing required'
        ' column: content"}]} 400',
        '{"error":{"code":"FILE_STORAGE_UNAVAILABLE","message":"File upload is not configured.'
        ' Please use direct JSON items array instead."}} 503',
        '"verificationId":"ver_xyz789","verdict":"true","confidence":0.95,"decision":"accept"',
        '"verificationId":"ver_abc456","verdict":"false","confidence":0.88,"decision":"reject"',
        '"pagination":{"total":50,"limit":3,"offset":0,"hasMore":true}}',
    ],
}

PAGES = {
    "README.md": Page(README_SKIPPED, README_EXPECTED),
    "docs/control-plane.md": Page(expected=CONTROL_PLANE_EXPECTED),
    "docs/benchmarks.md": Page(),
    "docs/dashboard.md": Page(),
    "docs/harness.md": Page(HARNESS_SKIPPED, HARNESS_EXPECTED),
    "docs/providers/deepvue.md": Page(expected=DEEPVUE_EXPECTED),
    "docs/providers/passcreator.md": Page(expected=PASSCREATOR_EXPECTED),
    "docs/providers/helloatlas.md": Page(HELLOATLAS_SKIPPED, HELLOATLAS_EXPECTED),
    "docs/providers/check.md": Page(expected=CHECK_EXPECTED),
}


def documentation_pages() -> set[str]:
    """README.md and every Markdown page under docs/."""
    pages = {"README.md"}
    pages |= {path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").rglob("*.md")}
    return pages


def blocks_of(page: str) -> list[str]:
    return BLOCK.findall((ROOT / page).read_text(encoding="utf-8"))


def key_of(block: str, keys: dict[str, object]) -> str | None:
    found = [key for key in keys if key in block]
    assert len(found) <= 1, f"several keys match one block: {found}"
    return found[0] if found else None


@pytest.fixture
def origin() -> Iterator[str]:
    """A fresh `bulksim serve` as `make run` starts it, on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKSIM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--seed", "0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    # The rest of its output is drained so that the server never blocks writing it.
    drain = threading.Thread(target=process.stdout.read, daemon=True)
    drain.start()
    try:
        match = re.match(
            r"bulksim serving on (http://127\.0\.0\.1:\d+) \(clock system, seed 0\)", banner
        )
        assert match, banner
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        drain.join(timeout=30)
        process.stdout.close()


def scratch_clone(directory: Path) -> None:
    """What the blocks use of a clone: the sample files and `.venv/bin/bulksim`."""
    (directory / "fixtures").symlink_to(ROOT / "fixtures", target_is_directory=True)
    command = Path(sys.executable).parent / "bulksim"
    if not command.exists():
        found = shutil.which("bulksim")
        assert found, "the bulksim command is not installed"
        command = Path(found)
    (directory / ".venv" / "bin").mkdir(parents=True)
    (directory / ".venv" / "bin" / "bulksim").symlink_to(command)


def test_every_page_is_run() -> None:
    assert set(PAGES) == documentation_pages()


@pytest.mark.parametrize("page", sorted(PAGES))
def test_skip_list_and_expectations_name_real_blocks(page: str) -> None:
    blocks = blocks_of(page)
    tables: tuple[dict[str, str], dict[str, Expected]] = (PAGES[page].skipped, PAGES[page].expected)
    for table in tables:
        for key in table:
            assert sum(key in block for block in blocks) == 1, f"no single block holds {key!r}"
    text = (ROOT / page).read_text(encoding="utf-8")
    for fragments in PAGES[page].expected.values():
        for fragment in fragments:
            # Shown by the page itself (a comment or the printed output), not only asserted.
            if isinstance(fragment, re.Pattern):
                assert fragment.search(text), f"{page} does not show {fragment.pattern!r}"
                continue
            shown = fragment.replace("\\\\", "\\").split("\n")[0][:60]
            assert shown in text, f"{page} does not show {fragment!r}"


pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("curl") is None or shutil.which("jq") is None,
    reason="the walkthroughs need bash, curl and jq",
)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_shell_blocks_run_in_order_and_print_what_they_claim(
    page: str, origin: str, tmp_path: Path
) -> None:
    scratch_clone(tmp_path)
    skipped, expected = PAGES[page].skipped, PAGES[page].expected
    script = ["set -e -o pipefail"]
    ran = []
    for number, block in enumerate(blocks_of(page)):
        if key_of(block, dict(skipped)) is not None:
            continue
        body = block.replace("http://127.0.0.1:8700", origin)
        script += [f"printf '\\n@@begin {number}\\n'", body, f"printf '\\n@@end {number}\\n'"]
        ran.append((number, block))
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    outputs = dict(
        re.findall(r"^@@begin (\d+)\n(.*?)^@@end \1$", result.stdout, re.MULTILINE | re.DOTALL)
    )
    for number, block in ran:
        assert str(number) in outputs, (
            f"{page}: block {number} failed (bash exit {result.returncode}):\n{block}\n"
            f"--- output ---\n{result.stdout[-3000:]}\n--- errors ---\n{result.stderr[-3000:]}"
        )
        key = key_of(block, dict(expected))
        for fragment in expected.get(key, []) if key else []:
            printed = outputs[str(number)]
            found = (
                fragment.search(printed)
                if isinstance(fragment, re.Pattern)
                else fragment in printed
            )
            assert found, f"{page}: block {number} did not print {fragment!r}:\n{printed[-3000:]}"
    assert result.returncode == 0, result.stderr[-3000:]
    loops = [n for n, block in ran if key_of(block, dict(expected)) == SEED_LOOP]
    for loop in loops:
        assert_seed_loop_progress(outputs[str(loop)])


def assert_seed_loop_progress(printed: str) -> None:
    """250, 500, 750 (a few more when polls are slow, never fewer), then 1000/1000 finished."""
    lines = re.findall(r"^Progress: (\d+)/(\d+) - Status: (.+)$", printed, re.MULTILINE)
    *running, last = lines
    assert last == ("1000", "1000", "finished")
    assert 1 <= len(running) <= 3
    for poll, (current, total, status) in enumerate(running, 1):
        assert (total, status) == ("1000", "in progress")
        assert 250 * poll <= int(current) < 1000
    assert [int(current) for current, _, _ in running] == sorted(
        {int(current) for current, _, _ in running}
    )
