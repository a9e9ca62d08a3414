"""The human-facing report: an Allure 3 HTML report built from a run's allure-results.

Testers accepting a server release and vendors self-certifying read a report,
not JSON; CI pipelines publish it as an artefact.  `ktbench run --html` calls
`build_html_report` after the run.  The Allure 3 command line (Node.js, npm
package `allure`) does the rendering offline; this module finds it, configures
it for a conformance run and guards what it publishes:

* the CLI comes from $KTBENCH_ALLURE, `allure` on PATH, or the repository's
  `.cache/allure/node_modules/.bin/allure` (where .ci/run installs it); an
  Allure 2 (Java) CLI is not used: its command line and output differ;
* configuration is an `allurerc.mjs` written to a temporary directory: report
  name, the Awesome plugin's tree grouped by feature and requirement label,
  noise labels hidden, and the failure categories of the results directory's
  categories.json (Allure 2 syntax, which Allure 3 reads only from its config);
* secrets: the results were scrubbed by the pytest plugin; this module checks
  them again (configured passwords and client secrets, raw, URL- or
  JSON-escaped, and every Basic credential in base64) before the CLI reads
  them, and checks the generated files before they replace the old report;
* the Awesome template loads Google Analytics whenever a report is opened; a
  conformance report of a healthcare system must not call home, so the tag is
  removed from index.html.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

ALLURE_ENV = "KTBENCH_ALLURE"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHED_ALLURE = Path(".cache") / "allure" / "node_modules" / ".bin" / "allure"
INSTALL_HINT = (
    "install the Allure 3 command line (needs Node.js; tested with Node.js 20): "
    f"`mkdir -p {REPO_ROOT / '.cache' / 'allure'} && cd {REPO_ROOT / '.cache' / 'allure'} "
    "&& npm init -y && npm install allure@3`, or `npm install -g allure@3`, "
    f"or point ${ALLURE_ENV} at an Allure 3 `allure` executable"
)

# The Awesome report's tree: feature, then requirement (the @req: tag), then the scenarios.
GROUP_BY = ("feature", "requirement")
# Labels allure-pytest-bdd adds that say nothing to a tester.
HIDDEN_LABELS = ("thread", "language", "framework")
GENERATE_TIMEOUT_SECONDS = 600.0
_MIN_SECRET = 4  # as ktbench.core.redact: shorter values would match ordinary text

_ANALYTICS_SCRIPT_RE = re.compile(
    r"<script[^>]*\bsrc=\"https://www\.googletagmanager\.com/[^\"]*\"[^>]*>\s*</script>\s*", re.IGNORECASE)
_ANALYTICS_INLINE_RE = re.compile(r"<script>(?:(?!</script>).)*\bgtag\((?:(?!</script>).)*</script>\s*", re.DOTALL)
_REMOTE_SCRIPT_RE = re.compile(r"<script[^>]*\bsrc=\"https?://", re.IGNORECASE)
# Files the CLI copies from its own package: the app bundle, its licence notes, styles and fonts.
_STATIC_SUFFIXES = {".js", ".css", ".woff", ".woff2", ".ttf", ".eot", ".ico", ".map"}


class HtmlReportError(Exception):
    """The HTML report could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class AllureCli:
    command: tuple[str, ...]
    version: str
    source: str  # where it was found: $KTBENCH_ALLURE, PATH or the repository cache


@dataclass(frozen=True)
class HtmlReport:
    directory: Path
    index: Path
    allure: AllureCli
    seconds: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelledSecret:
    """A secret value and a description that is safe to print ("portal password")."""

    label: str
    value: str = field(repr=False)


# ---------------------------------------------------------------------------------------------------------------
# Finding the Allure 3 command line
# ---------------------------------------------------------------------------------------------------------------
def _package_version(executable: str) -> str | None:
    """The version in the npm package.json next to the CLI script (no Node.js start-up needed)."""
    try:
        package = Path(executable).resolve().parent / "package.json"
        data = json.loads(package.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) and data.get("name") == "allure" else None
    return version if isinstance(version, str) and re.fullmatch(r"\d+\.\d+\.\d+.*", version) else None


def _version(command: Sequence[str]) -> str | None:
    if len(command) == 1:
        known = _package_version(command[0])
        if known is not None:
            return known
    try:
        proc = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "NO_COLOR": "1"}, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\b(\d+)\.(\d+)\.(\d+)\b", proc.stdout + proc.stderr)
    return match.group(0) if proc.returncode == 0 and match else None


def _is_allure3(version: str) -> bool:
    return int(version.split(".")[0]) >= 3


def find_allure(env: Mapping[str, str] | None = None, repo_root: Path = REPO_ROOT) -> AllureCli:
    """The Allure 3 CLI: $KTBENCH_ALLURE, else `allure` on PATH, else <repo>/.cache/allure/.../allure."""
    env = os.environ if env is None else env
    configured = env.get(ALLURE_ENV, "").strip()
    if configured:
        command = shlex.split(configured)
        executable = shutil.which(command[0], path=env.get("PATH")) if command else None
        if executable is None:
            raise HtmlReportError(f"${ALLURE_ENV} is {configured!r}, which is not an executable; {INSTALL_HINT}")
        version = _version([executable, *command[1:]])
        if version is None or not _is_allure3(version):
            found = f"Allure {version}" if version else "no working Allure CLI"
            raise HtmlReportError(f"${ALLURE_ENV} ({configured!r}) is {found}; ktbench needs Allure 3: {INSTALL_HINT}")
        return AllureCli((executable, *command[1:]), version, f"${ALLURE_ENV}")
    rejected = []
    candidates = [(shutil.which("allure", path=env.get("PATH")), "PATH"),
                  (str(repo_root / CACHED_ALLURE), "the repository cache")]
    for executable, source in candidates:
        if not executable or not os.access(executable, os.X_OK) or not Path(executable).is_file():
            continue
        version = _version([executable])
        if version is not None and _is_allure3(version):
            return AllureCli((executable,), version, source)
        rejected.append(f"{executable} ({f'Allure {version}' if version else 'does not run'})")
    found = f" (found, but not usable: {'; '.join(rejected)})" if rejected else ""
    raise HtmlReportError(f"the Allure 3 command line was not found{found}; {INSTALL_HINT}")


# ---------------------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------------------
class _HasRoles(Protocol):
    @property
    def roles(self) -> Mapping[str, Any]: ...


def _reveal(value: Any) -> str:
    return value.reveal() if hasattr(value, "reveal") else str(value or "")


def report_secrets(target: _HasRoles, extra: Iterable[str] = ()) -> list[LabelledSecret]:
    """Every configured secret of a target's roles (passwords, client secrets, private keys) and every HTTP
    Basic credential built from them (base64)."""
    found: list[LabelledSecret] = []
    for role, creds in sorted(target.roles.items()):
        secrets = creds.secrets() if hasattr(creds, "secrets") else ()
        found += [LabelledSecret(f"{role} secret", value) for value in secrets if value]
        if getattr(creds, "type", "basic") != "basic":
            continue
        password, client_secret = _reveal(creds.password), _reveal(creds.client_secret)
        for user in sorted({creds.username, creds.app_id} - {""}):
            for label, value in (("password", password), ("client secret", client_secret)):
                if value:
                    basic = base64.b64encode(f"{user}:{value}".encode()).decode()
                    found.append(LabelledSecret(f"{role} Basic credentials ({label}, base64)", basic))
    found += [LabelledSecret("learned secret", value) for value in extra]
    return [s for s in found if len(s.value) >= _MIN_SECRET]


def _forms(secret: str) -> set[bytes]:
    """How a secret can appear in a text file: raw, URL-quoted or JSON-escaped."""
    return {form.encode() for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]) if form}


def _scanned_files(root: Path, *, skip_static: bool) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        static = path.suffix.lower() in _STATIC_SUFFIXES or path.name.endswith(".LICENSE.txt")
        if skip_static and static and path.parent == root:
            continue
        yield path


def find_leaks(root: Path, secrets: Sequence[LabelledSecret], *, skip_static: bool = False) -> list[tuple[Path, str]]:
    """(file, secret label) for every secret found in the files under `root`; never returns the values."""
    leaks = []
    forms = [(s.label, _forms(s.value)) for s in secrets]
    for path in _scanned_files(root, skip_static=skip_static):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for label, variants in forms:
            if any(v in data for v in variants):
                leaks.append((path, label))
    return leaks


def _describe_leaks(leaks: Sequence[tuple[Path, str]], root: Path) -> str:
    shown = [f"{path.relative_to(root)} ({label})" for path, label in leaks[:5]]
    more = f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""
    return ", ".join(shown) + more


# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------
_INLINE_FLAGS_RE = re.compile(r"^\(\?([aiLmsux]+)\)")


def java_regex_to_js(pattern: str) -> dict[str, str]:
    """An Allure 2 (Java, whole-message match) regex as a JS RegExp source and flags."""
    flags = ""
    match = _INLINE_FLAGS_RE.match(pattern)
    if match:
        flags = "".join(sorted(set(match.group(1)) & set("ims")))
        pattern = pattern[match.end():]
    pattern = pattern.replace("(?P<", "(?<")
    return {"source": f"^(?:{pattern})$", "flags": flags}


def allure3_categories(categories_file: Path | None) -> list[dict[str, Any]]:
    """categories.json (Allure 2 format) as the data of Allure 3's `categories` setting."""
    if categories_file is None or not categories_file.is_file():
        return []
    try:
        rules = json.loads(categories_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HtmlReportError(f"{categories_file} is not valid JSON: {exc}") from None
    converted = []
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict) or not rule.get("name"):
            continue
        item: dict[str, Any] = {"name": str(rule["name"])}
        if rule.get("matchedStatuses"):
            item["matchedStatuses"] = [str(s) for s in rule["matchedStatuses"]]
        for key in ("messageRegex", "traceRegex"):
            if rule.get(key):
                item[key] = java_regex_to_js(str(rule[key]))
        if len(item) > 1:
            converted.append(item)
    return converted


def allure_config_text(*, name: str, categories: list[dict[str, Any]]) -> str:
    """The allurerc.mjs for one `allure generate` (JavaScript, so that categories can carry RegExps)."""
    options = {
        "reportName": name,
        "reportLanguage": "en",
        "groupBy": list(GROUP_BY),
        "stepTreeExpansion": "expand_failed_only",
    }
    return (
        "// Written by ktbench (ktbench/report/html.py) for one `allure generate`; edits are not kept.\n"
        f"const categories = {json.dumps(categories, indent=2)};\n"
        "const regex = (r) => new RegExp(r.source, r.flags);\n"
        "export default {\n"
        f"  name: {json.dumps(name)},\n"
        f"  hideLabels: {json.dumps(list(HIDDEN_LABELS))},\n"
        f"  plugins: {{ awesome: {{ options: {json.dumps(options)} }} }},\n"
        "  categories: categories.map(({ name, matchedStatuses, messageRegex, traceRegex }) => ({\n"
        "    name,\n"
        "    ...(matchedStatuses ? { matchedStatuses } : {}),\n"
        "    ...(messageRegex ? { messageRegex: regex(messageRegex) } : {}),\n"
        "    ...(traceRegex ? { traceRegex: regex(traceRegex) } : {}),\n"
        "  })),\n"
        "};\n"
    )


def strip_analytics(html: str) -> str:
    """index.html without the Google Analytics tag the Awesome template adds."""
    html = _ANALYTICS_SCRIPT_RE.sub("", html)
    return _ANALYTICS_INLINE_RE.sub("", html)


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------
def _looks_like_allure_report(directory: Path) -> bool:
    return (directory / "index.html").is_file() and any((directory / d).is_dir() for d in ("data", "widgets"))


def _check_destination(results_dir: Path, report_dir: Path) -> None:
    if report_dir == results_dir or report_dir in results_dir.parents or results_dir in report_dir.parents:
        raise HtmlReportError(f"the HTML report directory {report_dir} must be outside the results directory "
                              f"{results_dir} and must not contain it")
    if report_dir.exists():
        if not report_dir.is_dir():
            raise HtmlReportError(f"{report_dir} exists and is not a directory")
        if any(report_dir.iterdir()) and not _looks_like_allure_report(report_dir):
            raise HtmlReportError(f"refusing to replace {report_dir}: it is not empty and not an Allure report; "
                                  "remove it or choose another report directory")


def build_html_report(
    results_dir: str | Path,
    report_dir: str | Path,
    *,
    secrets: Sequence[LabelledSecret] = (),
    name: str = "ktbench conformance",
    allure: AllureCli | None = None,
    timeout: float = GENERATE_TIMEOUT_SECONDS,
) -> HtmlReport:
    """Build the Allure 3 HTML report of `results_dir` into `report_dir` (replacing an older report there)."""
    from ktbench.report.scrub import scrub_files

    started = time.perf_counter()
    results_dir, report_dir = Path(results_dir).resolve(), Path(report_dir).resolve()
    if not any(results_dir.glob("*-result.json")):
        raise HtmlReportError(f"no Allure results in {results_dir}: nothing to build an HTML report from")
    _check_destination(results_dir, report_dir)
    allure = allure or find_allure()
    notes = []
    leaks = find_leaks(results_dir, secrets)
    if leaks:
        scrub_files([results_dir], [s.value for s in secrets])
        notes.append(f"scrubbed secrets the run left in {results_dir}: {_describe_leaks(leaks, results_dir)}")
        leaks = find_leaks(results_dir, secrets)
        if leaks:
            raise HtmlReportError(f"refusing to build the HTML report: secrets remain in {results_dir} "
                                  f"({_describe_leaks(leaks, results_dir)})")

    report_dir.parent.mkdir(parents=True, exist_ok=True)
    # next to the destination (so the final rename stays on one file system), with the umask's permissions
    # (mkdtemp's 0700 would hide the published report from a web server running as another user)
    staging = report_dir.parent / f".ktbench-html-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        with tempfile.TemporaryDirectory(prefix="ktbench-allurerc-") as config_dir:
            config = Path(config_dir) / "allurerc.mjs"
            config.write_text(allure_config_text(name=name, categories=allure3_categories(
                results_dir / "categories.json")), encoding="utf-8")
            command = [*allure.command, "generate", str(results_dir), "--config", str(config),
                       "--output", str(staging)]
            try:
                proc = subprocess.run(command, cwd=config_dir, capture_output=True, text=True, timeout=timeout,
                                      env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}, check=False)
            except subprocess.TimeoutExpired:
                raise HtmlReportError(f"allure generate did not finish within {timeout:.0f} s") from None
            except OSError as exc:
                raise HtmlReportError(f"could not start {allure.command[0]}: {exc}; {INSTALL_HINT}") from None
        index = staging / "index.html"
        if proc.returncode != 0 or not index.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            hint = f"\n{INSTALL_HINT}" if proc.returncode in (126, 127) else ""  # the CLI or Node.js is missing
            raise HtmlReportError(f"allure generate failed (exit code {proc.returncode}):\n{tail}{hint}")
        html = index.read_text(encoding="utf-8")
        index.write_text(strip_analytics(html), encoding="utf-8")
        if _REMOTE_SCRIPT_RE.search(index.read_text(encoding="utf-8")):
            notes.append("index.html still loads a script from the internet (changed Allure template?)")
        leaks = find_leaks(staging, secrets, skip_static=True)
        if leaks:
            raise HtmlReportError(f"refusing to publish the HTML report: it contains secrets "
                                  f"({_describe_leaks(leaks, staging)})")
        if report_dir.exists():
            shutil.rmtree(report_dir)
        staging.rename(report_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return HtmlReport(directory=report_dir, index=report_dir / "index.html", allure=allure,
                      seconds=time.perf_counter() - started, notes=tuple(notes))


def viewing_hint(report: HtmlReport) -> str:
    """How to open a built report: it fetches its data files, so it needs http://, not file://."""
    allure = shlex.join(report.allure.command)
    return (f"{allure} open {report.directory}   or   python3 -m http.server -d {report.directory} "
            "--bind 127.0.0.1 8000   (then http://127.0.0.1:8000/)")
