"""Listings and agents (MyCRM): a listing and its unit are one of MyCRM's records, so either
comes with the other, and the agent with both when the expand header is sent."""

from __future__ import annotations

from tests.conftest import Client


async def test_units_with_their_listing_and_agent_are_one_request(client: Client) -> None:
    client.sandbox.reset_counters()

    data = await client.data(
        '{ units(first: 20, providers: ["mycrm"]) { edges { node { sourceId unitCode '
        "listing { sourceId title bedrooms status price { amount currency } "
        "agent { sourceId firstName lastName } } } } } }"
    )

    units = [edge["node"] for edge in data["units"]["edges"]]
    rows = {row["id"]: row for row in client.mycrm.records.properties}
    users = {user["id"]: user for user in client.mycrm.records.users}
    assert len(units) == 20
    for unit in units:
        row, listing = rows[int(unit["sourceId"])], unit["listing"]
        assert listing["sourceId"] == unit["sourceId"]
        assert (listing["title"], listing["bedrooms"]) == (row["title"], row["bedrooms"])
        assert listing["price"] == {"amount": f"{row['price']}.00", "currency": "CAD"}
        assert listing["status"] == row["status"].upper()
        assert listing["agent"]["lastName"] == users[row["agent"]]["last_name"]
    (seen,) = client.mycrm.seen("/properties")
    assert seen.query["fields"] == ("id,reference,bedrooms,price,currency,status,title,agent")
    assert dict(seen.headers).get("x-mycrm-expand-data") == "true"
    assert client.mycrm.count("GET") == 1


async def test_listings_with_their_units_and_agents_then_agents_by_id(client: Client) -> None:
    client.sandbox.reset_counters()

    data = await client.data(
        "{ listings(first: 50, filter: {status: AVAILABLE, bedrooms: {min: 2}}) { totalCount "
        "edges { node { id availableFrom bedrooms unit { id rooms listing { id } } "
        "agent { id email phone } } } } }"
    )

    listings = [edge["node"] for edge in data["listings"]["edges"]]
    rows = client.mycrm.records.properties
    expected = [r for r in rows if r["status"] == "available" and r["bedrooms"] >= 2]
    assert data["listings"]["totalCount"] == len(listings) == len(expected) > 0
    assert all(listing["unit"]["listing"]["id"] == listing["id"] for listing in listings)
    assert all(listing["bedrooms"] >= 2 for listing in listings)
    # the listings' pages only (bedrooms are matched here, so totalCount reads them all):
    # their units and agents came with them
    assert client.mycrm.count("GET") == client.mycrm.count("GET", "/properties")
    assert all(seen.query["status"] == "available" for seen in client.mycrm.seen("/properties"))

    agents = sorted({listing["agent"]["id"] for listing in listings})
    again = await client.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Agent { id email phone } } }",
        {"ids": agents},
    )
    by_id = {listing["agent"]["id"]: listing["agent"] for listing in listings}
    assert again["nodes"] == [by_id[agent] for agent in agents]


async def test_agents_are_mycrms_agents_matched_by_name(client: Client) -> None:
    data = await client.data(
        "{ all: agents(first: 20) { totalCount edges { node { lastName } } } "
        'some: agents(first: 20, filter: {nameContains: "é"}) '
        "{ edges { node { firstName lastName } } } }"
    )

    users = client.mycrm.records.users
    names = [edge["node"]["lastName"] for edge in data["all"]["edges"]]
    assert data["all"]["totalCount"] == len(users) == len(names)
    assert names == sorted(names, key=str.casefold)
    matched = [edge["node"] for edge in data["some"]["edges"]]
    assert matched and all("é" in f"{a['firstName']}{a['lastName']}".lower() for a in matched)


async def test_units_of_providers_that_do_not_advertise_say_so(client: Client) -> None:
    body = await client.query(
        '{ buildings(first: 1, providers: ["pms"]) '
        "{ edges { node { units { listing { id } } } } } }"
    )

    units = body["data"]["buildings"]["edges"][0]["node"]["units"]
    assert units and all(unit["listing"] is None for unit in units)
    assert body["extensions"]["warnings"] == [
        {
            "provider": "pms",
            "message": "pms does not advertise units: Unit.listing cannot be answered from it.",
        }
    ]
