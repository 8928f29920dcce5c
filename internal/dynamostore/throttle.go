package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// ThrottleTries bounds how often a throttled record write is sent (each
// send already includes the SDK retryer's own attempts).
const ThrottleTries = 6

// defaultThrottleBackoff waits 50 ms, 100 ms, 200 ms, ... before try i+1:
// 1.55 s in all for ThrottleTries, within the 5 s the delivery engine gives
// a record write.
func defaultThrottleBackoff(i int) time.Duration { return 50 * time.Millisecond << i }

// ErrThrottled marks a write DynamoDB still throttled after ThrottleTries
// sends; the caller decides (the delivery engine logs the record's failure
// next to the record's own log line).
var ErrThrottled = errors.New("dynamodb kept throttling the write")

// throttled reports whether err is DynamoDB refusing for capacity: a
// table or index partition over its throughput (on-demand tables too, on a
// hot key), or the account's request rate.
func throttled(err error) bool {
	var pte *types.ProvisionedThroughputExceededException
	var rle *types.RequestLimitExceeded
	if errors.As(err, &pte) || errors.As(err, &rle) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "ThrottlingException" || api.ErrorCode() == "ProvisionedThroughputExceededException")
}

// retryThrottled runs write until it succeeds, fails otherwise than by
// throttling, ctx ends, or ThrottleTries sends were throttled. Waits come
// from backoff(i) after the i-th throttled send (nil: the default).
func retryThrottled(ctx context.Context, backoff func(int) time.Duration, write func() error) error {
	if backoff == nil {
		backoff = defaultThrottleBackoff
	}
	var err error
	for i := range ThrottleTries {
		if err = write(); err == nil || !throttled(err) {
			return err
		}
		if i == ThrottleTries-1 {
			break
		}
		t := time.NewTimer(backoff(i))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%d sends, then %w): %w", ErrThrottled, i+1, ctx.Err(), err)
		case <-t.C:
		}
	}
	return fmt.Errorf("%w (%d sends): %w", ErrThrottled, ThrottleTries, err)
}
