"""The registry: adding a provider means one connector module and one entry here."""

from __future__ import annotations

from gateway.connectors.base import Connector
from gateway.connectors.leap import LeapConnector
from gateway.connectors.mycrm import MyCrmConnector
from gateway.connectors.pms import PmsConnector
from gateway.connectors.primmo import PrimmoConnector
from gateway.connectors.scom import ScomConnector

__all__ = ["CONNECTORS", "Connector"]

CONNECTORS: dict[str, type[Connector]] = {
    connector.name: connector
    for connector in (PrimmoConnector, PmsConnector, MyCrmConnector, LeapConnector, ScomConnector)
}
