// What Primmo adds around its OData service and CAP does not do by itself: the token
// flow, bearer checks on /api/*, and `api/Units/ForRent`, which takes its dates as plain
// query parameters rather than as an OData function. Everything else is CAP's own OData.
const crypto = require('node:crypto')
const http = require('node:http')
const querystring = require('node:querystring')
const cds = require('@sap/cds')
const express = require('express')

const DAY = 24 * 3600 * 1000
const tokens = new Map()
const account = {
  apiKey: process.env.PRIMMO_API_KEY,
  userName: process.env.PRIMMO_USERNAME,
  password: process.env.PRIMMO_PASSWORD,
}

function error(res, status, code, message) {
  res.status(status).json({ error: { code, message } })
}

function token(req, res) {
  if (req.get('x-api-key') !== account.apiKey) {
    return error(res, 401, 'Unauthorized', 'The x-api-key header is missing or unknown.')
  }
  const { UserName, Password } = req.body ?? {}
  if (UserName !== account.userName || Password !== account.password) {
    return error(res, 401, 'Unauthorized', 'Unknown user name or password.')
  }
  const issued = crypto.randomBytes(24).toString('base64url')
  tokens.set(issued, Date.now() + DAY)
  res.json(issued)
}

function bearer(req, res, next) {
  const [scheme, value] = (req.get('authorization') ?? '').split(' ')
  const expires = scheme?.toLowerCase() === 'bearer' ? tokens.get(value) : undefined
  if (!expires || expires < Date.now()) {
    return error(res, 401, 'Unauthorized', 'The bearer token is missing or expired.')
  }
  next()
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/

// Served as the Units entity set restricted to the free units, so every OData option and
// the server's paging apply as they do to `api/Units`. The links in the answer are CAP's,
// relative to the service root as CAP writes them, but made to name this endpoint and its
// dates again: the rewritten URL is not one a client asked for.
async function forRent(req, res, next) {
  const { StartDate: start, EndDate: end, ...options } = req.query
  if (!ISO_DATE.test(start ?? '') || !ISO_DATE.test(end ?? '')) {
    return error(res, 400, 'BadRequest', 'StartDate and EndDate are required ISO dates.')
  }
  if (end < start) return error(res, 400, 'BadRequest', 'EndDate is before StartDate.')
  const { SELECT } = cds.ql
  const { Leases, Units } = cds.entities('primmo')
  const leases = await SELECT.from(Leases).columns('UnitId').where`StartDate <= ${end} and EndDate >= ${start}`
  const busy = new Set(leases.map(lease => lease.UnitId))
  const free = (await SELECT.from(Units).columns('Id')).map(unit => unit.Id).filter(id => !busy.has(id))
  const only = free.length ? `Id in (${free.join(',')})` : 'false'
  const filter = options.$filter ? `${only} and (${options.$filter})` : only
  req.url = '/api/Units?' + querystring.stringify({ ...options, $filter: filter })
  const send = res.send.bind(res)
  res.send = body => {
    if (body?.['@odata.context']) body['@odata.context'] = '../' + body['@odata.context']
    const link = body?.['@odata.nextLink']
    if (link) {
      const { $skiptoken } = querystring.parse(link.split('?')[1])
      const asked = { StartDate: start, EndDate: end, ...options, $skiptoken }
      body['@odata.nextLink'] = 'Units/ForRent?' + querystring.stringify(asked)
    }
    return send(body)
  }
  next()
}

cds.on('bootstrap', app => {
  // CAP listens on every interface; these tests serve on loopback only.
  app.listen = function (port) {
    return http.createServer(this).listen(port, '127.0.0.1')
  }
  app.post('/api/Token', express.json({ strict: false }), token)
  app.use('/api', bearer)
  app.get('/api/Units/ForRent', forRent)
})

module.exports = cds.server
