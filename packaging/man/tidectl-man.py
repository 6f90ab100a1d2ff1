#!/usr/bin/env python3
"""Writes tidectl's manual page: the hand-written parts from a template, and
the COMMANDS section from the built tidectl's own --help, walked down its
command tree, so the page names exactly the commands and flags it has.

Usage: tidectl-man.py <tidectl> <template> <version> <output>
"""
import re
import subprocess
import sys


def roff(text):
    """Plain text as roff: backslashes and hyphens escaped, no control lines."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def help_of(tidectl, path):
    done = subprocess.run([tidectl, *path, "--help"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    if done.returncode != 0:
        sys.exit(f"tidectl-man.py: {' '.join([tidectl, *path, '--help'])} failed ({done.returncode}): "
                 f"{done.stderr.strip()}")
    return done.stdout


def parse(text):
    """CLI11's help: a description, 'Usage: ...', then titled sections of
    two-space-indented entries ('name   description'; a long name puts its
    description on the next line, deeper indented)."""
    lines = text.splitlines()
    description, usage, sections, current = [], "", {}, None
    for line in lines:
        if line.startswith("Usage: "):
            usage = line[len("Usage: "):].strip()
        elif re.match(r"^[A-Z][A-Za-z ]*:$", line):
            current = sections.setdefault(line[:-1], [])
        elif current is None:
            if line.strip():
                description.append(line.strip())
        elif line.startswith("  ") and line.strip():
            body = line[2:]
            if body.startswith(" ") and current:
                name, desc = current[-1]
                current[-1] = (name, (desc + " " + body.strip()).strip())
                continue
            parts = re.split(r"\s{2,}", body.strip(), maxsplit=1)
            current.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return " ".join(description), usage, sections


def entry(name, desc):
    out = [".TP", "\\fB" + roff(name) + "\\fR"]
    out.append(roff(desc) if desc else "")
    return out


def walk(tidectl, path, out):
    if len(path) > 8:
        sys.exit(f"tidectl-man.py: the command tree is deeper than 8 at {' '.join(path)}")
    description, usage, sections = parse(help_of(tidectl, path))
    if not usage.startswith(" ".join(["tidectl", *path]) + " "):
        sys.exit(f"tidectl-man.py: tidectl {' '.join(path)} --help shows the usage '{usage}'")
    subcommands = [name for name, _ in sections.get("Subcommands", [])]
    if path:
        out.append('.SS "' + roff(usage).replace('"', '\\(dq') + '"')
        if description:
            out.append(roff(description))
        for title in ("Positionals", "Options"):
            items = [(n, d) for n, d in sections.get(title, []) if not n.startswith("-h,--help")]
            for name, desc in items:
                out.extend(entry(name, desc))
    for name in subcommands:  # "lc, launch-config": a name and its aliases
        walk(tidectl, path + [name.split(",")[0].strip()], out)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    tidectl, template, version, output = sys.argv[1:]
    commands = []
    walk(tidectl, [], commands)
    if not commands:
        sys.exit("tidectl-man.py: tidectl --help lists no subcommands")
    with open(template, encoding="utf-8") as f:
        page = f.read()
    if "@COMMANDS@\n" not in page:
        sys.exit(f"tidectl-man.py: {template} has no @COMMANDS@ line")
    page = page.replace("@VERSION@", version).replace("@COMMANDS@\n", "\n".join(commands) + "\n")
    with open(output, "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main()
