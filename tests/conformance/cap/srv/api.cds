using primmo from '../db/schema';

// At `/api`, where Primmo serves its entity sets, rather than CAP's `/odata/v4/...`.
@path: '/api'
service Api {
  @readonly entity Buildings       as projection on primmo.Buildings;
  @readonly entity Units           as projection on primmo.Units;
  entity Tenants                  as projection on primmo.Tenants;
  @readonly entity LedgerDivisions as projection on primmo.LedgerDivisions;
}
