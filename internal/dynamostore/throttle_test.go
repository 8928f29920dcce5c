package dynamostore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestRetryThrottled: a throttled write is sent again, at most
// ThrottleTries times; other errors and successes end it at once; a context
// that ends stops the waits. The write is a function returning the SDK's
// own error types, as the client returns them.
func TestRetryThrottled(t *testing.T) {
	throttle := &types.ProvisionedThroughputExceededException{Message: new(string)}
	other := errors.New("validation")
	tests := []struct {
		name      string
		errs      []error // what the sends answer, in turn (then nil)
		wantSends int
		want      error // errors.Is target; nil for success
	}{
		{"success", nil, 1, nil},
		{"throttled twice", []error{throttle, &types.RequestLimitExceeded{}}, 3, nil},
		{"always throttled", []error{throttle, throttle, throttle, throttle, throttle, throttle, throttle}, ThrottleTries, ErrThrottled},
		{"other error", []error{other}, 1, other},
		{"throttled then other", []error{throttle, other}, 2, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sends := 0
			err := retryThrottled(context.Background(), func(int) time.Duration { return 0 }, func() error {
				sends++
				if sends <= len(tt.errs) {
					return tt.errs[sends-1]
				}
				return nil
			})
			if sends != tt.wantSends {
				t.Errorf("%d sends, want %d", sends, tt.wantSends)
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrThrottled && !errors.As(err, &throttle) {
				t.Errorf("err = %v: the last SDK error should be kept", err)
			}
		})
	}

	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		sends := 0
		err := retryThrottled(ctx, func(int) time.Duration { return time.Hour }, func() error {
			sends++
			cancel()
			return throttle
		})
		if sends != 1 || !errors.Is(err, ErrThrottled) || !errors.Is(err, context.Canceled) {
			t.Errorf("%d sends, %v", sends, err)
		}
	})
}
