package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/testserver"
)

// TestTwoServesShareRedisAndKafka: two serve processes on one Redis
// (Debian's redis-server) and one Kafka (kfake, in this process, on
// loopback) split the notifications posted to either; every task is
// delivered, a retry goes through the shared retry set, and the CLI reads
// the one log.
func TestTwoServesShareRedisAndKafka(t *testing.T) {
	rd, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rd.Stop)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "tasks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	queue := "kafka://" + strings.Join(kc.ListenAddrs(), ",") + "/tasks"

	tg := newTarget(t, http.StatusInternalServerError, http.StatusOK) // the first delivery is retried
	dir := t.TempDir()
	file := writeTriggers(t, dir, tg.srv.URL)
	shared := []string{"--store", rd.URL, "--queue", queue}
	a := startServe(t, dir+"/unused-a.db", append(shared, "--triggers", file)...)
	b := startServe(t, dir+"/unused-b.db", shared...)

	body, err := os.ReadFile("../../events/bodies/tcr-push.json")
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		s := []*server{a, b}[i%2]
		tagged := strings.ReplaceAll(string(body), "v1.10.0", "v1.10."+string(rune('a'+i)))
		code, got := s.postBody(t, "/v1/notify", []byte(tagged), e2eToken)
		if code != http.StatusAccepted {
			t.Fatalf("post %d: %d %v", i, code, got)
		}
		for _, ev := range got["events"].([]any) {
			for _, tk := range ev.(map[string]any)["tasks"].([]any) {
				ids[tk.(map[string]any)["id"].(string)] = true
			}
		}
	}
	if len(ids) != n {
		t.Fatalf("%d tasks for %d notifications", len(ids), n)
	}
	got := tg.wait(t, n+1, time.Minute) // n tasks, one of them twice
	seen := map[string]int{}
	for _, d := range got {
		seen[d.header.Get("webhook-id")]++
	}
	for id := range ids {
		if seen[id] == 0 {
			t.Errorf("task %s not delivered", id)
		}
	}
	out := cli(t, "logs", "--store", rd.URL, "-o", "json", "--status", "success", "--limit", "100")
	if recs := decodeLines[record.Record](t, out); len(recs) < n {
		t.Errorf("%d success records in the shared log, want %d", len(recs), n)
	}
	delivered := func(s *server) int { return strings.Count(s.logText(), `"msg":"delivery"`) }
	t.Logf("deliveries logged: a %d, b %d", delivered(a), delivered(b))
	a.stop(t)
	b.stop(t)
}
