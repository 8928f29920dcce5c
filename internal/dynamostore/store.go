// Package dynamostore is regtrigger's DynamoDB store for the cloud
// functions: triggers, the trigger log and the duplicate-notification keys,
// on aws-sdk-go-v2. It implements the same interfaces as the embedded
// boltstore (trigger.Store, record.Store, receiver.Dedupe) plus a short-TTL
// cache for the receiver's one read per notification (CachedTriggers).
//
// Three tables (see TableDefinitions and docs/dynamodb.md):
//
//	triggers  name (HASH)                      doc = trigger JSON, version, namespace
//	          GSI by-namespace: namespace (HASH) name (RANGE)      Namespace() = one Query
//	records   trigger (HASH) sk (RANGE)        sk = time#task#attempt, doc = record JSON
//	          sparse GSI by-failure: status_day (HASH) sk (RANGE)   logs --status failed|blocked
//	            status_day = status#YYYY-MM-DD, only on failed and blocked records
//	          #task:<id> / task                                    the archived task (redeliver, logs --task)
//	          TTL expires_at = time + retention (epoch seconds)
//	dedupe    key (HASH)                       TTL expires_at
//
// Every write that must not race is a conditional write: Create is
// attribute_not_exists, Update and Delete compare the stored version, Claim
// succeeds only on an absent or expired key. TTL deletion is lazy (up to
// days late), so reads never trust it: records older than the retention and
// expired keys are ignored on read.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/regtrigger/regtrigger/internal/record"
)

// Config configures a Store.
type Config struct {
	// Client is the DynamoDB client (required).
	Client *dynamodb.Client
	// Table names (all required).
	TriggersTable, RecordsTable, DedupeTable string
	// Retention is how long log records are kept (default
	// record.DefaultRetention).
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ThrottleBackoff is the wait after the i-th throttled record write
	// (nil: 50 ms doubling, ThrottleTries sends in all); tests shorten it.
	ThrottleBackoff func(i int) time.Duration
}

// Store is the DynamoDB store. It is safe for concurrent use.
type Store struct {
	db        *dynamodb.Client
	tables    TableNames
	retention time.Duration
	now       func() time.Time

	throttleBackoff func(int) time.Duration
}

// New checks cfg and returns a Store. It does no I/O: a missing table shows
// up as an error of the first call that needs it.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("dynamostore: no DynamoDB client")
	}
	names := TableNames{Triggers: cfg.TriggersTable, Records: cfg.RecordsTable, Dedupe: cfg.DedupeTable}
	for _, n := range []struct{ what, name string }{{"triggers", names.Triggers}, {"records", names.Records}, {"dedupe", names.Dedupe}} {
		if n.name == "" {
			return nil, fmt.Errorf("dynamostore: no %s table name", n.what)
		}
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("dynamostore: negative retention %s", cfg.Retention)
	}
	if cfg.Retention == 0 {
		cfg.Retention = record.DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{db: cfg.Client, tables: names, retention: cfg.Retention, now: cfg.Now, throttleBackoff: cfg.ThrottleBackoff}, nil
}

// Tables returns the table names the store uses.
func (s *Store) Tables() TableNames { return s.tables }

// TableNames names the three tables.
type TableNames struct {
	Triggers, Records, Dedupe string
}

// Attribute and index names. They are part of the table definitions the SAM
// and Serverless templates must match.
const (
	// triggers table
	attrName      = "name"
	attrNamespace = "namespace"
	attrVersion   = "version"
	attrDoc       = "doc"
	attrUpdatedAt = "updated_at"
	// IndexTriggersByNamespace is the triggers table's GSI on namespace.
	IndexTriggersByNamespace = "by-namespace"

	// records table
	attrTrigger   = "trigger"
	attrSK        = "sk"
	attrTaskID    = "task_id"
	attrStatus    = "status"
	attrStatusDay = "status_day"
	// IndexRecordsByFailure is the records table's one GSI: sparse, on
	// status_day, which only failed and blocked records carry.
	IndexRecordsByFailure = "by-failure"

	// dedupe table
	attrKey = "key"

	// TTLAttribute is the epoch-seconds expiry attribute of the records and
	// dedupe tables; DynamoDB's TTL deletes items some time after it.
	TTLAttribute = "expires_at"
)

// TableDefinition is one table as regtrigger needs it.
type TableDefinition struct {
	Create *dynamodb.CreateTableInput
	// TTLAttribute is the attribute TTL must be enabled on ("" = none).
	TTLAttribute string
}

func attrDef(name string) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
}

func keySchema(hash, rng string) []types.KeySchemaElement {
	ks := []types.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash}}
	if rng != "" {
		ks = append(ks, types.KeySchemaElement{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange})
	}
	return ks
}

func gsi(name, hash, rng string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName:  aws.String(name),
		KeySchema:  keySchema(hash, rng),
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

// TableDefinitions returns the key schemas, GSIs and TTL attributes of the
// three tables, billed PAY_PER_REQUEST. CreateTables creates them; the SAM
// and Serverless templates declare the same (a template test compares).
func TableDefinitions(n TableNames) []TableDefinition {
	return []TableDefinition{
		{Create: &dynamodb.CreateTableInput{
			TableName:              aws.String(n.Triggers),
			BillingMode:            types.BillingModePayPerRequest,
			AttributeDefinitions:   []types.AttributeDefinition{attrDef(attrName), attrDef(attrNamespace)},
			KeySchema:              keySchema(attrName, ""),
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{gsi(IndexTriggersByNamespace, attrNamespace, attrName)},
		}},
		{Create: &dynamodb.CreateTableInput{
			TableName:   aws.String(n.Records),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				attrDef(attrTrigger), attrDef(attrSK), attrDef(attrStatusDay),
			},
			KeySchema: keySchema(attrTrigger, attrSK),
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				gsi(IndexRecordsByFailure, attrStatusDay, attrSK),
			},
		}, TTLAttribute: TTLAttribute},
		{Create: &dynamodb.CreateTableInput{
			TableName:            aws.String(n.Dedupe),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{attrDef(attrKey)},
			KeySchema:            keySchema(attrKey, ""),
		}, TTLAttribute: TTLAttribute},
	}
}

// TableWait bounds how long CreateTables waits for one table to become
// active.
const TableWait = 5 * time.Minute

// CreateTables creates the store's tables if they do not exist, waits until
// they are active and enables TTL. It is for tests and local use:
// production tables come from the SAM or Serverless template.
//
// A server that does not implement UpdateTimeToLive (dynalite) is
// tolerated: the store never relies on TTL for correctness.
func (s *Store) CreateTables(ctx context.Context) error {
	for _, def := range TableDefinitions(s.tables) {
		name := aws.ToString(def.Create.TableName)
		_, err := s.db.CreateTable(ctx, def.Create)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", name, err)
		}
		w := dynamodb.NewTableExistsWaiter(s.db, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, 5*time.Second
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, TableWait); err != nil {
			return fmt.Errorf("wait for table %s: %w", name, err)
		}
		if def.TTLAttribute != "" {
			if err := s.enableTTL(ctx, name, def.TTLAttribute); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) enableTTL(ctx context.Context, table, attr string) error {
	d, err := s.db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if t := d.TimeToLiveDescription; t != nil && aws.ToString(t.AttributeName) == attr &&
		(t.TimeToLiveStatus == types.TimeToLiveStatusEnabled || t.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "UnknownOperationException" {
		return nil // an API-compatible server without TTL
	}
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", table, err)
	}
	return nil
}

// Attribute value helpers.

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}

func getS(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

// conditionFailed reports whether err is a failed condition check, with the
// item the server returned (nil when it did not return one).
func conditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}
