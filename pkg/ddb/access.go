package ddb

// Grant is the DynamoDB access one component needs on one table (or one of its indexes).
type Grant struct {
	Table   string   // a base table name: TenantsTable, APIKeysTable or EventsTable
	Index   string   // empty: the table itself
	Actions []string // DynamoDB API actions, without the "dynamodb:" prefix
}

// Components that talk to DynamoDB, as the chart and the IAM policies name them.
const (
	ComponentIngest    = "ingest"
	ComponentInbox     = "inbox"
	ComponentKeysAdmin = "keys-admin"
	// ComponentTables is the one-off job that creates the tables; nothing else may.
	ComponentTables = "tables"
)

// OperationActions maps the API operations that IAM does not authorise by their own name to
// the actions it checks instead: a transaction needs the rights of the writes inside it.
var OperationActions = map[string][]string{
	"TransactWriteItems": {"PutItem"},
}

// Access is the least-privilege grant of every component: the production IAM policies must say
// exactly this, and the services' tests check that their code calls nothing outside it.
// DescribeTable serves the start-up check; the health gauge reads with a granted GetItem or
// BatchGetItem.
var Access = map[string][]Grant{
	ComponentIngest: {
		{Table: EventsTable, Actions: []string{"DescribeTable", "GetItem", "PutItem"}},
		// A key and its tenant are read in one BatchGetItem; UpdateItem records a key's last
		// use, at most once an hour per key.
		{Table: APIKeysTable, Actions: []string{"BatchGetItem", "DescribeTable", "UpdateItem"}},
		{Table: TenantsTable, Actions: []string{"BatchGetItem", "DescribeTable"}},
	},
	ComponentInbox: {
		{Table: EventsTable, Actions: []string{"BatchGetItem", "DescribeTable", "GetItem", "UpdateItem"}},
		{Table: EventsTable, Index: InboxIndex, Actions: []string{"Query"}},
		{Table: EventsTable, Index: DeadIndex, Actions: []string{"Query"}},
		{Table: APIKeysTable, Actions: []string{"BatchGetItem", "DescribeTable", "UpdateItem"}},
		{Table: TenantsTable, Actions: []string{"BatchGetItem", "DescribeTable"}},
	},
	ComponentKeysAdmin: {
		{Table: TenantsTable, Actions: []string{"DescribeTable", "GetItem", "PutItem", "Scan", "UpdateItem"}},
		{Table: APIKeysTable, Actions: []string{"DescribeTable", "GetItem", "PutItem", "UpdateItem"}},
		// Listing a tenant's keys; single keys are read through a pointer item, consistently.
		{Table: APIKeysTable, Index: KeysByTenantIndex, Actions: []string{"Query"}},
	},
	ComponentTables: {
		{Table: TenantsTable, Actions: []string{"CreateTable", "DescribeTable", "DescribeTimeToLive", "UpdateTimeToLive"}},
		{Table: APIKeysTable, Actions: []string{"CreateTable", "DescribeTable", "DescribeTimeToLive", "UpdateTimeToLive"}},
		{Table: EventsTable, Actions: []string{"CreateTable", "DescribeTable", "DescribeTimeToLive", "UpdateTimeToLive"}},
	},
}
