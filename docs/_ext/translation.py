"""The site in English and in Simplified Chinese: one build per language, from the same sources.

- Each language other than English is a build with ``-D language=CODE`` into the folder CODE below the
  English site (``site/zh_CN/``); Sphinx translates its messages from the gettext catalogues kept in
  ``docs/locale/CODE/LC_MESSAGES/`` (docs/locale/README.md says how to keep them), copied below the build's
  doctree folder, where Sphinx compiles them: a build writes nothing into docs/.
- Every page links to the same page in the site's other languages (``_templates/language-switch.html``, in
  the navigation bar).
- The configuration lists the pages translated in full (``numnet_translated_pages``) and the pages whose
  section titles alone are (``numnet_translated_titles``, patterns: the API reference, whose docstrings stay
  English). For the latter the gettext builder writes the section titles only, so their catalogues hold
  nothing that a change of a docstring would make stale.
- On those pages a build in another language reports each message that the page's catalogue does not
  translate (new, changed in English, fuzzy or empty), so the strict build fails until the catalogue is
  brought up to date.
"""

import fnmatch
import pathlib
import posixpath
import shutil

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.i18n import docname_to_domain
from sphinx.util.nodes import extract_messages

LOGGER = logging.getLogger(__name__)

# The site's languages: the name the switch shows, and the folder of that build below the English site.
SITE_LANGUAGES = {"en": ("English", ""), "zh_CN": ("中文", "zh_CN")}
ENGLISH = "en"


def site_language(config):
    """The build's language as a key of SITE_LANGUAGES (Sphinx's default language is English)."""
    return config.language if config.language in SITE_LANGUAGES else ENGLISH


def language_links(language, page_uri):
    """[(name, code, relative URL)] from the page ``page_uri`` ("tutorials/e03-spiral.html") of the build in
    ``language`` to the same page of the build in every other language."""
    to_english_root = "../" * page_uri.count("/") + ("../" if SITE_LANGUAGES[language][1] else "")
    links = []
    for code, (name, folder) in SITE_LANGUAGES.items():
        if code != language:
            links.append((name, code.replace("_", "-"), posixpath.join(to_english_root + folder, page_uri)))
    return links


def add_language_links(app, pagename, templatename, context, doctree):
    """Give the template language-switch.html the links of this page to its counterparts."""
    context["numnet_language_links"] = language_links(site_language(app.config), app.builder.get_target_uri(pagename))


def use_copied_catalogues(app, config):
    """Translate from a copy of docs/locale below the doctree folder (Sphinx writes each catalogue's
    compiled .mo file beside its .po)."""
    if site_language(config) == ENGLISH:
        return
    copy = pathlib.Path(app.doctreedir) / "locale"
    for folder in config.locale_dirs:
        mirror(pathlib.Path(app.srcdir) / folder, copy)
    config.locale_dirs = [str(copy)]


def mirror(source, copy):
    """Make the .po files below ``copy`` those below ``source``; a file copied keeps its time, one unchanged
    is left alone, so Sphinx recompiles, and rebuilds the pages of, the changed catalogues only."""
    wanted = {path.relative_to(source): path for path in source.rglob("*.po")}
    for path in copy.rglob("*.po"):
        if path.relative_to(copy) not in wanted:
            path.unlink()
            path.with_suffix(".mo").unlink(missing_ok=True)
    for relative, path in wanted.items():
        target = copy / relative
        if not target.is_file() or target.read_bytes() != path.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def titles_only(config, docname):
    """Whether only the section titles of ``docname`` are translated: a pattern of numnet_translated_titles
    matches it, and numnet_translated_pages does not list it."""
    return docname not in config.numnet_translated_pages and any(
        fnmatch.fnmatchcase(docname, pattern) for pattern in config.numnet_translated_titles)


def section_title(node):
    """Whether ``node`` is the title of a section."""
    return isinstance(node, nodes.title) and isinstance(node.parent, nodes.section)


def keep_titles_only(app, doctree, docname):
    """In the gettext builder, mark every text of a titles-only page untranslatable but its section titles."""
    if app.builder.name != "gettext" or not titles_only(app.config, docname):
        return
    for node in doctree.findall(nodes.TextElement):
        if not section_title(node):
            node["translatable"] = False


def catalogue_translations(config, docname):
    """{message: translation} of the messages that ``docname``'s catalogue translates (neither empty nor
    fuzzy), read from the .po file as Sphinx's copy of the catalogues holds it; None without a catalogue."""
    from babel.messages.pofile import read_po

    domain = docname_to_domain(docname, config.gettext_compact)
    for folder in config.locale_dirs:
        path = pathlib.Path(folder) / config.language / "LC_MESSAGES" / f"{domain}.po"
        if path.is_file():
            with path.open("rb") as stream:
                return {message.id: message.string for message in read_po(stream)
                        if message.id and message.string.strip() and not message.fuzzy}
    return None


class UntranslatedMessages(SphinxTransform):
    """Warn of each message of a translated page (of a section title, on a titles-only page) that its
    catalogue does not translate. It runs before Sphinx's Locale transform (priority 20) replaces them."""

    default_priority = 19

    def apply(self, **kwargs):
        docname = self.env.docname
        full = docname in self.config.numnet_translated_pages
        if site_language(self.config) == ENGLISH or not (full or titles_only(self.config, docname)):
            return
        translations = catalogue_translations(self.config, docname)
        if translations is None:
            LOGGER.warning("%s is listed as translated but has no catalogue: python3 docs/_ext/catalogues.py %s",
                           docname, docname, location=docname)
            return
        for node, message in extract_messages(self.document):
            if (full or section_title(node)) and message not in translations:
                LOGGER.warning("a message without a translation in docs/locale/%s/LC_MESSAGES/%s.po (new, changed "
                               "or fuzzy; docs/locale/README.md): %r", self.config.language, docname,
                               message[:80], location=node)


def setup(app):
    # Not "env": listing a page reads no page again (the English build would run every page's code).
    app.add_config_value("numnet_translated_pages", [], "", types=[list])
    app.add_config_value("numnet_translated_titles", [], "", types=[list])
    app.connect("config-inited", use_copied_catalogues)
    app.connect("html-page-context", add_language_links)
    app.connect("doctree-resolved", keep_titles_only)
    app.add_transform(UntranslatedMessages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
