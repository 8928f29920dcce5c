package cloud

import (
	"context"
	"strings"
	"testing"

	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/teststack"
)

// newAWSStack starts dynalite and fauxqs for one test, creates a fresh
// set of the functions' tables and queues named with prefix, and sets the
// SDK's standard variables to them, as on Lambda (cloud.New reads them).
func newAWSStack(t *testing.T, prefix string) *teststack.Stack {
	t.Helper()
	dyn, err := testserver.Dynalite()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dyn.Stop)
	fq, err := testserver.Fauxqs()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fq.Stop)
	st, err := teststack.New(context.Background(), dyn.URL, fq.URL, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range testserver.AWSEnv(dyn.URL, fq.URL) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return st
}
