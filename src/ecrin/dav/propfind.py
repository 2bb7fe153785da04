"""PROPFIND (RFC 4918 section 9.1): Depth 0 and 1; Depth infinity is refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import is_
from xml.sax.saxutils import escape

from lxml import etree
from starlette.responses import Response

from ecrin.core.errors import BadRequest, Forbidden
from ecrin.core.model import DeadProperty
from ecrin.core.paths import DavPath
from ecrin.dav.context import DavContext
from ecrin.dav.live_properties import ALLPROP, DETAILED, FOLDER, LIVE, Batch, PropertyScope
from ecrin.dav.multistatus import (
    found_responses_xml,
    multistatus_response,
    quote_names,
    response_xml,
)
from ecrin.dav.xml import DAV, OC, PropName, elements, empty_element, qname
from ecrin.services.files import Entry


def parse_request(root: etree._Element | None) -> tuple[str, list[PropName]]:
    """('allprop' | 'propname' | 'prop', names)."""
    if root is None:
        return "allprop", []
    if qname(root) != (DAV, "propfind"):
        raise BadRequest("the body must be a DAV:propfind element")
    mode, names = "", []
    for child in elements(root):
        name = qname(child)
        if name == (DAV, "allprop"):
            mode = "allprop"
        elif name == (DAV, "propname"):
            mode = "propname"
        elif name == (DAV, "prop"):
            mode = "prop"
            names = [qname(p) for p in elements(child)]
    if not mode:
        raise BadRequest("PROPFIND needs prop, allprop or propname")
    return mode, names


BATCH_ENTRIES = 128  # entries rendered together: enough to amortise, few enough to stream


class ResponseRenderer:
    """Renders `d:response` elements for one PROPFIND's mode and property names.

    Built once per request: which renderer answers each name, and each name's empty element
    for the 404 propstat, are looked up here; then each batch of entries costs one renderer
    call per property, and per entry only the assembly of its response.
    """

    def __init__(
        self,
        mode: str,
        names: list[PropName],
        scope: PropertyScope,
        dead: Mapping[int, list[DeadProperty]],
    ) -> None:
        self.mode = mode
        self.scope = scope
        self.dead = dead
        if mode == "propname":
            names = list(LIVE)
        elif mode == "allprop":
            names = list(ALLPROP)
        self.names = names
        # A name no live renderer knows is absent, unless the entry has it as a dead property.
        self.renderers = [LIVE.get(name, _absent) for name in names]
        self.empties = [empty_element(name) for name in names]
        self._nones = (None,) * len(names)
        # The 404 propstat's elements for each pattern of absent values (few per response).
        self._missing: dict[tuple[bool, ...], list[str]] = {}

    def render(self, hrefs: list[str], batch: Batch) -> str:
        """The responses of the batch's entries; `hrefs` (same order) must be percent-encoded."""
        scope = self.scope
        columns = [render(batch, scope) for render in self.renderers]
        dead = self.dead
        if columns and not dead and self.mode != "propname" and not any(None in c for c in columns):
            # The common case (no dead property, every property found), with no test per entry.
            return found_responses_xml(hrefs, columns)  # type: ignore[arg-type]  # no None
        per_entry = zip(*columns, strict=True) if columns else [()] * len(batch.entries)
        rows = zip(batch.entries, hrefs, per_entry, strict=True)
        nones = self._nones
        responses: list[str] = []
        for index, (entry, href, values) in enumerate(rows):
            own_dead = dead.get(entry.node.id) if dead else None
            if own_dead or self.mode == "propname":
                found, missing = self._with_dead(values, own_dead or [], batch, index)
            elif None in values:
                found = [value for value in values if value is not None]
                missing = self._missing_for(tuple(map(is_, values, nones)))
            else:
                found, missing = values, ()  # type: ignore[assignment]  # no None in values
            responses.append(response_xml(href, found, missing))
        return "".join(responses)

    def _missing_for(self, absent: tuple[bool, ...]) -> list[str]:
        """The empty elements of the names whose value is absent (True in `absent`)."""
        missing = self._missing.get(absent)
        if missing is None:
            missing = [e for e, gone in zip(self.empties, absent, strict=True) if gone]
            self._missing[absent] = missing
        return missing

    def _with_dead(
        self, values: tuple[str | None, ...], dead: list[DeadProperty], batch: Batch, index: int
    ) -> tuple[list[str], list[str]]:
        """(found, missing) for an entry with dead properties, or any entry for propname."""
        dead_by_name = {(p.namespace, p.name): p.xml for p in dead}
        if self.mode == "propname":
            present = [
                e for value, e in zip(values, self.empties, strict=True) if value is not None
            ]
            return present + [empty_element(name) for name in dead_by_name], []
        wanted = list(zip(self.names, values, strict=True))
        if self.mode == "allprop":
            for name in dead_by_name:
                # A dead property under a live name cannot be set with PROPPATCH; if one is
                # stored anyway, it is answered by its live renderer, as for any live name.
                value = None
                if name in LIVE:
                    one = Batch.one(batch.entries[index], batch.paths[index])
                    value = LIVE[name](one, self.scope)[0]
                wanted.append((name, value))
        found: list[str] = []
        missing: list[str] = []
        for name, value in wanted:
            if name not in LIVE:
                value = dead_by_name.get(name)
            if value is None:
                missing.append(empty_element(name))
            else:
                found.append(value)
        return found, missing


def _absent(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [None] * len(batch.entries)


def propstat_response(href: str, found: list[str], missing: list[str]) -> str:
    """One `d:response` for any href (escaped here): see `multistatus.response_xml`."""
    return response_xml(escape(href), found, missing)


async def handle(ctx: DavContext) -> Response:
    depth = ctx.depth("1", ("0", "1", "infinity"))
    if depth == "infinity":
        raise Forbidden("Depth: infinity is not supported", condition="propfind-finite-depth")
    body = await ctx.read_xml_body()
    mode, names = parse_request(ctx.parse(body) if body.strip() else None)

    listing = await ctx.services.files.listing(
        ctx.home,
        ctx.path,
        children=depth == "1",  # Depth 0: a folder's children are not even read
        properties=mode != "prop" or any(n not in LIVE for n in names),
        locks=mode != "prop" or (DAV, "lockdiscovery") in names,
        share_types=mode != "prop" or (OC, "share-types") in names,
        details=mode != "prop" or any(n in DETAILED for n in names),
    )
    entry, children = listing.entry, listing.children
    scope = PropertyScope(
        listing.user, ctx.services.instance_id, listing.locks, listing.share_types
    )
    renderer = ResponseRenderer(mode, names, scope, listing.properties)
    return multistatus_response(
        _responses(renderer, ctx.href(ctx.path, entry.node.is_folder), entry, ctx.path, children)
    )


def _responses(
    renderer: ResponseRenderer, href: str, entry: Entry, path: DavPath, children: list[Entry]
) -> Iterator[str]:
    """The target's response, then its children's (their hrefs extend the folder's)."""
    yield renderer.render([href], Batch.one(entry, path.segments))
    for start in range(0, len(children), BATCH_ENTRIES):
        some = children[start : start + BATCH_ENTRIES]
        names = quote_names([c.name for c in some])
        hrefs = [
            href + name + ("/" if c.node.kind is FOLDER else "")
            for name, c in zip(names, some, strict=True)
        ]
        yield renderer.render(hrefs, Batch.children(some, path.segments))
