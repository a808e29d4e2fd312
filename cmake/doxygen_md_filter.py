#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Doxygen input filter for the markdown guides (cmake/docs.cmake runs it on every *.md).

The guides link to their sections the way GitHub renders them (`[Timeouts](#6-timeouts)`).
Doxygen 1.9 does not derive anchors from headings, so each heading gets an explicit
`{#page-github-slug}` here, the slug computed as GitHub does (lower case, punctuation dropped,
spaces to hyphens, a numeric suffix for repeats) and prefixed with the file's name, since Doxygen's
labels are global; links to `#slug` and `other.md#slug` are rewritten to match. Fenced code blocks
are left alone."""
import os
import re
import sys


def page(path):
    return re.sub(r"[^A-Za-z0-9]+", "-", os.path.splitext(os.path.basename(path))[0]).strip("-").lower()


def unlink_outside(line):
    """Links to markdown files that are not pages of the reference (the README of each src/
    folder) become plain text: Doxygen would look for a page of that name."""
    def keep_text(m):
        target = m.group(2)
        inside = target == "README.md" or not target.startswith(("../", "src/"))
        return m.group(0) if inside else m.group(1)
    return re.sub(r"\[([^\]]*)\]\(([^()#\s]*\.md)\)", keep_text, line)


def relink(line, here):
    def fix(m):
        target, frag = m.group(1), m.group(2)
        return f"](#{page(target) if target else here}-{frag})"
    return re.sub(r"\]\(((?:[^()#\s]*\.md)?)#([^)\s]+)\)", fix, line)


def slug(title, seen):
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", title).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    text = text.replace(" ", "-")
    base, n = text, seen.get(text, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


def main():
    seen = {}
    fence = None
    here = page(sys.argv[1])
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            stripped = line.lstrip()
            marker = re.match(r"(```+|~~~+)", stripped)
            if marker:
                if fence is None:
                    fence = marker.group(1)
                elif stripped.startswith(fence):
                    fence = None
            elif fence is None:
                m = re.match(r"(#{1,6})\s+(.*?)\s*$", line)
                if m and "{#" not in m.group(2):
                    label = slug(m.group(2), seen)
                    if label:
                        line = f"{m.group(1)} {m.group(2)} {{#{here}-{label}}}\n"
                line = relink(unlink_outside(line), here)
            sys.stdout.write(line)


if __name__ == "__main__":
    main()
