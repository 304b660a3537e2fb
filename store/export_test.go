package store

// IndexPlans is indexPlans, for the plan tests.
const IndexPlans = indexPlans
