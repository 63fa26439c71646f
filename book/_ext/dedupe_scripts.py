"""Sphinx extension: drop repeated inline scripts from the HTML pages.

sphinx-thebe 0.3 registers its configuration script (``const THEBE_JS_URL = ...``) after the
HTML builder has started, and with Sphinx 7 that script lands twice on every page; the second
copy throws "Identifier 'THEBE_JS_URL' has already been declared" in the browser. We keep the
first copy of every script.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # The same file or inline body (the two copies of an inline script differ only in
        # filename None versus "").
        attributes = getattr(script, "attributes", {}) or {}
        filename = getattr(script, "filename", script) or ""
        key = (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
