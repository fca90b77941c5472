"""Saved locations and favourites: everything here is scoped to the caller's account.

Another account's location answers 404, exactly like a missing one, so the
API never confirms that an id exists.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Blueprint, abort, g, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import CursorResult, Row, Select, bindparam, delete, exists, false, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from app import validation as v
from app.auth import login_required
from app.db import get_session, violates
from app.models import NAME_MAX, ZOOM_DEFAULT, ZOOM_MAX, ZOOM_MIN, Favorite, Location
from app.responses import no_content

bp = Blueprint("locations", __name__)


class NewLocation(v.Body):
    """A location to save."""

    name = v.Text(max_len=NAME_MAX, required=True)
    latitude = v.Number(low=-90, high=90, required=True)
    longitude = v.Number(low=-180, high=180, required=True)
    zoomlevel = v.Integer(low=ZOOM_MIN, high=ZOOM_MAX, load_default=ZOOM_DEFAULT)


class LocationChanges(NewLocation):
    """Changes to a saved location: the same fields, each optional (loaded with ``partial=True``)."""

    zoomlevel = v.Integer(low=ZOOM_MIN, high=ZOOM_MAX)  # no default: left out means unchanged


# A listing comes a page at a time: however many locations an account saves,
# one answer stays small and well within the router's 30 s.
PAGE_DEFAULT = 100
PAGE_MAX = 1000


class Page(v.Query):
    """Which page of a listing: up to ``limit`` locations, those with an id above ``after``.

    The last id of a page, not an offset, says where the next one starts:
    a location deleted meanwhile shifts nothing, so none is listed twice or
    passed over. (One saved meanwhile comes on a later page, unless a
    concurrent save took a lower id and committed after that page was read.)
    """

    limit = v.QueryInteger(
        low=1, high=PAGE_MAX, load_default=PAGE_DEFAULT, metadata={"description": "How many locations, at most."}
    )
    after = v.QueryInteger(
        low=0,
        high=v.MAX_DB_ID,
        load_default=0,
        metadata={"description": "The id of the last location seen; the Link header's next page sets it."},
    )


NEW_LOCATION = NewLocation()
LOCATION_CHANGES = LocationChanges(partial=True)
PAGE = Page()

# Statements are built once on the Core tables: per request they only take
# parameters, and plain rows skip the ORM's entity machinery.
_locations = Location.__table__
_favorites = Favorite.__table__
_is_favorite = exists().where(
    _favorites.c.location_id == _locations.c.id, _favorites.c.account_id == _locations.c.account_id
)
_favorite = _is_favorite.label("favorite")
COLUMNS = (
    _locations.c.id,
    _locations.c.name,
    _locations.c.latitude,
    _locations.c.longitude,
    _locations.c.zoomlevel,
    _favorite,
    _locations.c.created_at,
)
# What an INSERT returns: a new location is nobody's favourite yet. (The
# EXISTS above would not do: RETURNING has no FROM for it to correlate to,
# so it would ask whether any favourite exists at all.)
NEW_COLUMNS = tuple(false().label("favorite") if column is _favorite else column for column in COLUMNS)
# What a listing of favourites reads: each is one, no need to ask.
FAVORITE_COLUMNS = tuple(true().label("favorite") if column is _favorite else column for column in COLUMNS)
_mine = _locations.c.account_id == bindparam("account_id")
_this_one = _locations.c.id == bindparam("location_id")
# A page: up to "rows" locations (one past the page says whether there is a
# next one) after the last id seen, each read from an index in id order.
LIST_MINE = (
    select(*COLUMNS)
    .where(_mine, _locations.c.id > bindparam("after"))
    .order_by(_locations.c.id)
    .limit(bindparam("rows"))
)
# Favourites are read from the favourites' own key (account_id,
# location_id), so a page costs the same however few of an account's
# locations are favourites.
LIST_MY_FAVORITES = (
    select(*FAVORITE_COLUMNS)
    .join_from(
        _favorites,
        _locations,
        (_favorites.c.location_id == _locations.c.id) & (_favorites.c.account_id == _locations.c.account_id),
    )
    .where(_favorites.c.account_id == bindparam("account_id"), _favorites.c.location_id > bindparam("after"))
    .order_by(_favorites.c.location_id)
    .limit(bindparam("rows"))
)
GET_MINE = select(*COLUMNS).where(_this_one, _mine)
IS_MINE = select(exists().where(_this_one, _mine))


def as_json(row: Row[Any]) -> dict[str, Any]:
    """Return one location row as the API shows it."""
    return {
        "id": row.id,
        "name": row.name,
        "latitude": row.latitude,
        "longitude": row.longitude,
        "zoomlevel": row.zoomlevel,
        "favorite": row.favorite,
        "created_at": row.created_at.isoformat(),
    }


def _location_id(location_id: int) -> int:
    """Return ``location_id``, or 404 if no row could ever have it."""
    if location_id > v.MAX_DB_ID:
        abort(404, description=f"Location {location_id} not found.")
    return location_id


def _not_found(location_id: int) -> NoReturn:
    abort(404, description=f"Location {location_id} not found.")


def _require_owned(location_id: int) -> None:
    """Return if the location is the caller's; else 404, as for one that does not exist."""
    params = {"location_id": _location_id(location_id), "account_id": g.account_id}
    if not get_session().scalar(IS_MINE, params):
        _not_found(location_id)


def _listing(statement: Select[Any], page: dict[str, Any]) -> ResponseReturnValue:
    """Return one page of ``statement``'s rows; when more follow, a ``Link`` header (RFC 8288) to the next page."""
    limit = page["limit"]
    params = {"account_id": g.account_id, "after": page["after"], "rows": limit + 1}
    rows = get_session().execute(statement, params).all()
    headers = {}
    if len(rows) > limit:
        rows = rows[:limit]
        # Absolute, built from what the router says, as a new location's Location is.
        here = request.view_args or {}
        following = url_for(request.endpoint or "", **here, limit=limit, after=rows[-1].id, _external=True)
        headers["Link"] = f'<{following}>; rel="next"'
    return {"locations": [as_json(row) for row in rows]}, 200, headers


@bp.get("/locations")
@login_required
@v.query(PAGE)
def list_locations(query: dict[str, Any]) -> ResponseReturnValue:
    """List the caller's locations, oldest first, a page at a time."""
    return _listing(LIST_MINE, query)


@bp.post("/locations")
@login_required
@v.body(NEW_LOCATION)
def create_location(body: dict[str, Any]) -> ResponseReturnValue:
    """Save a location; zoomlevel defaults to 12."""
    session = get_session()
    row = session.execute(insert(Location).values(account_id=g.account_id, **body).returning(*NEW_COLUMNS)).one()
    session.commit()
    # Absolute, built from what the router says (X-Forwarded-Proto/-Port, through ProxyFix).
    return as_json(row), 201, {"Location": url_for("locations.get_location", location_id=row.id, _external=True)}


@bp.get("/locations/<int:location_id>")
@login_required
def get_location(location_id: int) -> ResponseReturnValue:
    """Show one of the caller's locations."""
    row = (
        get_session()
        .execute(select(*COLUMNS).where(Location.id == _location_id(location_id), Location.account_id == g.account_id))
        .first()
    )
    if row is None:
        _not_found(location_id)
    return as_json(row)


@bp.patch("/locations/<int:location_id>")
@login_required
@v.body(LOCATION_CHANGES)
def update_location(location_id: int, body: dict[str, Any]) -> ResponseReturnValue:
    """Change any of name, latitude, longitude and zoomlevel."""
    session = get_session()
    where = (Location.id == _location_id(location_id), Location.account_id == g.account_id)
    if body:
        row = session.execute(update(Location).where(*where).values(**body).returning(*COLUMNS)).first()
    else:
        row = session.execute(select(*COLUMNS).where(*where)).first()
    if row is None:
        _not_found(location_id)
    session.commit()
    return as_json(row)


@bp.delete("/locations/<int:location_id>")
@login_required
def delete_location(location_id: int) -> ResponseReturnValue:
    """Delete a location (and its favourite mark)."""
    session = get_session()
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]  # a DELETE's result has rowcount
        delete(Location).where(Location.id == _location_id(location_id), Location.account_id == g.account_id)
    )
    if result.rowcount == 0:
        _not_found(location_id)
    session.commit()
    return no_content()


@bp.put("/locations/<int:location_id>/favorite")
@login_required
def add_favorite(location_id: int) -> ResponseReturnValue:
    """Mark a location as a favourite; doing it twice is the same as once."""
    _require_owned(location_id)
    session = get_session()
    try:
        session.execute(
            pg_insert(Favorite).values(account_id=g.account_id, location_id=location_id).on_conflict_do_nothing()
        )
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if not violates(exc, Favorite, "location_id"):
            raise
        _not_found(location_id)  # deleted between the check and the insert
    return no_content()


@bp.delete("/locations/<int:location_id>/favorite")
@login_required
def remove_favorite(location_id: int) -> ResponseReturnValue:
    """Unmark a favourite; unmarking one that is not marked is fine."""
    _require_owned(location_id)
    session = get_session()
    session.execute(delete(Favorite).where(Favorite.account_id == g.account_id, Favorite.location_id == location_id))
    session.commit()
    return no_content()


@bp.get("/favorites")
@login_required
@v.query(PAGE)
def list_favorites(query: dict[str, Any]) -> ResponseReturnValue:
    """List the caller's favourite locations, oldest first, a page at a time."""
    return _listing(LIST_MY_FAVORITES, query)
