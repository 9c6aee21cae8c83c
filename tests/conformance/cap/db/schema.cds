// Primmo's entities with the property names and types its document shows. Codes are
// fixed-width text as in Primmo's SQL Server (padded in the data, not by SQLite, which
// compares text exactly).
namespace primmo;

entity Buildings {
  key Id           : Integer;
  CompanyNo        : Integer;
  DivisionNo       : Integer;
  BuildingCode     : String(10);
  Name             : String(100);
  CivicNoAndStreet : String(100);
  City             : String(60);
  // Primmo relates a unit to its building by company, division and code, not by id.
  Units            : Association to many Units
                       on  Units.CompanyNo    = CompanyNo
                       and Units.DivisionNo   = DivisionNo
                       and Units.BuildingCode = BuildingCode;
}

entity Units {
  key Id          : Integer;
  CompanyNo       : Integer;
  DivisionNo      : Integer;
  BuildingCode    : String(10);
  UnitCode        : String(10);
  OccupancyStatus : String(2);
  HousingType     : String(20);
  NumberOfRooms   : Decimal(4, 1);
}

entity Tenants {
  key Id       : Integer;
  CompanyNo    : Integer;
  DivisionNo   : Integer;
  TenantType   : String(1);
  TenantNo     : Double;
  BuildingCode : String(10);
  UnitCode     : String(10);
  LastName     : String(60);
  FirstName    : String(60);
  Email        : String(100);
  Phone        : String(30);
  LeaseId      : Integer;
}

entity LedgerDivisions {
  key Id           : Integer;
  CompanyNo        : Integer;
  DivisionNo       : Integer;
  Name             : String(100);
  CivicNoAndStreet : String(100);
  City             : String(60);
  PostalCode       : String(10);
}

// Not served: what `api/Units/ForRent` reads to tell a free unit from a let one.
entity Leases {
  key Id    : Integer;
  UnitId    : Integer;
  StartDate : Date;
  EndDate   : Date;
}
