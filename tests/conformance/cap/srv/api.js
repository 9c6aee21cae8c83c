// Primmo files a tenant under its unit's company, division and codes, numbers it itself,
// and refuses one for a unit it does not have; it creates tenants but never changes them here.
const cds = require('@sap/cds')

const { SELECT } = cds.ql

const REQUIRED = ['CompanyNo', 'DivisionNo', 'BuildingCode', 'UnitCode', 'LastName']

module.exports = class Api extends cds.ApplicationService {
  init() {
    const { Tenants, Units } = this.entities
    this.reject(['UPDATE', 'DELETE'], Tenants)
    this.before('CREATE', Tenants, async req => {
      const tenant = req.data
      const missing = REQUIRED.filter(name => tenant[name] == null || tenant[name] === '')
      if (missing.length) return req.reject(400, `Required: ${missing.join(', ')}.`)
      const { CompanyNo, DivisionNo, BuildingCode, UnitCode } = tenant
      const unit = await SELECT.one.from(Units).where({ CompanyNo, DivisionNo, BuildingCode, UnitCode })
      if (!unit) return req.reject(400, 'No unit matches CompanyNo, DivisionNo, BuildingCode and UnitCode.')
      const last = await SELECT.one.from(Tenants).columns('max(Id) as Id', 'max(TenantNo) as TenantNo')
      tenant.Id = (last?.Id ?? 0) + 1
      tenant.TenantNo = (last?.TenantNo ?? 0) + 1
      tenant.TenantType ??= 'D'
    })
    return super.init()
  }
}
