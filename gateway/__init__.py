"""propgate: one GraphQL endpoint in front of five property-management provider APIs."""
