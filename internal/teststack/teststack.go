// Package teststack creates, for one test, a fresh set of the cloud
// functions' tables and queues on the test servers (dynalite and fauxqs,
// started by package testserver), as the templates declare them.
//
// It is test support only; no production code imports it.
package teststack

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/testserver"
)

// Stack is one test's fresh tables and queue on dynalite and fauxqs.
type Stack struct {
	Store    *dynamostore.Store
	Tables   dynamostore.TableNames
	SQS      *sqs.Client
	QueueURL string
	DLQURL   string
}

var stackSeq atomic.Int64

// New creates the three tables (names starting with prefix) and a
// task queue with its dead-letter queue, as the templates declare them.
func New(ctx context.Context, dynamoURL, sqsURL, prefix string) (*Stack, error) {
	n := stackSeq.Add(1)
	tables := dynamostore.TableNames{
		Triggers: fmt.Sprintf("%s-triggers-%d", prefix, n),
		Records:  fmt.Sprintf("%s-records-%d", prefix, n),
		Dedupe:   fmt.Sprintf("%s-dedupe-%d", prefix, n),
	}
	store, err := dynamostore.New(dynamostore.Config{
		Client:        dynamodb.NewFromConfig(testserver.AWSConfig(dynamoURL)),
		TriggersTable: tables.Triggers, RecordsTable: tables.Records, DedupeTable: tables.Dedupe,
	})
	if err != nil {
		return nil, err
	}
	if err := store.CreateTables(ctx); err != nil {
		return nil, err
	}
	client := sqs.NewFromConfig(testserver.AWSConfig(sqsURL))
	// fauxqs keeps queues for its lifetime: the time makes the name unique
	// across test runs against one server.
	q, dlq, err := sqsqueue.CreateQueues(ctx, client, fmt.Sprintf("%s-tasks-%d-%d", prefix, n, time.Now().UnixNano()%1e9), 6*time.Minute)
	if err != nil {
		return nil, err
	}
	return &Stack{Store: store, Tables: tables, SQS: client, QueueURL: q, DLQURL: dlq}, nil
}
