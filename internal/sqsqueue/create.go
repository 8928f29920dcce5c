package sqsqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// MaxReceiveCount is how often a message is received before the redrive
// policy of CreateQueues moves it to the dead-letter queue. A retry waits in
// its own message (its visibility), and every receive counts, so it leaves
// room for the default 8 attempts and a failed settling; the dispatcher
// sends a new message for a retry that would come closer (docs/sqs.md).
const MaxReceiveCount = 10

// MessageRetention is how long the task queue keeps a message. A retry
// waiting in its message must come due before it ends; the dispatcher sends
// a new message for one that would not (docs/sqs.md).
const MessageRetention = 4 * 24 * time.Hour

// CreateQueues creates (or finds, CreateQueue being idempotent) a dead-letter
// queue "<name>-dlq" and the queue name with a redrive policy to it
// (MaxReceiveCount), MessageRetention and the given visibility timeout (at
// most 12 h). A
// name ending in ".fifo" makes both FIFO queues. It is meant for tests and
// local setups; deployments declare the queues in template.yaml or
// serverless.yml.
func CreateQueues(ctx context.Context, client *sqs.Client, name string, visibility time.Duration) (queueURL, dlqURL string, err error) {
	fifo := strings.HasSuffix(name, ".fifo")
	base := strings.TrimSuffix(name, ".fifo")
	dlqName := base + "-dlq"
	common := map[string]string{}
	if fifo {
		dlqName += ".fifo"
		common[string(types.QueueAttributeNameFifoQueue)] = "true"
	}

	dlqAttrs := map[string]string{string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(14 * 24 * 3600)}
	for k, v := range common {
		dlqAttrs[k] = v
	}
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(dlqName), Attributes: dlqAttrs})
	if err != nil {
		return "", "", fmt.Errorf("create dead-letter queue %s: %w", dlqName, err)
	}
	dlqURL = aws.ToString(dlq.QueueUrl)
	got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       dlq.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("read dead-letter queue %s arn: %w", dlqName, err)
	}
	arn := got.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", "", fmt.Errorf("dead-letter queue %s: no QueueArn attribute", dlqName)
	}
	redrive, err := json.Marshal(map[string]string{"deadLetterTargetArn": arn, "maxReceiveCount": strconv.Itoa(MaxReceiveCount)})
	if err != nil {
		return "", "", err
	}

	attrs := map[string]string{
		string(types.QueueAttributeNameRedrivePolicy):          string(redrive),
		string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(seconds(min(max(visibility, 0), MaxVisibilityTimeout)))),
		string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(MessageRetention / time.Second)),
	}
	for k, v := range common {
		attrs[k] = v
	}
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(q.QueueUrl), dlqURL, nil
}
