package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

var ctx = context.Background()

func tr(name, ns string) trigger.Trigger {
	return trigger.Trigger{
		Name: name, Enabled: true, Namespace: ns, Actions: []event.Action{event.PushImage},
		URL: "https://example.com/" + name, Headers: map[string]string{"Authorization": "Bearer x"},
		Secrets: []string{"whsec_abc"}, Timeout: trigger.Duration(5 * time.Second),
	}
}

func names(l []trigger.Trigger) string {
	var n []string
	for _, t := range l {
		n = append(n, t.Name)
	}
	return strings.Join(n, ",")
}

func TestNew(t *testing.T) {
	c := client(endpoint, 1)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{TriggersTable: "a", RecordsTable: "b", DedupeTable: "c"}, "no DynamoDB client"},
		{"no triggers table", Config{Client: c, RecordsTable: "b", DedupeTable: "c"}, "no triggers table"},
		{"no records table", Config{Client: c, TriggersTable: "a", DedupeTable: "c"}, "no records table"},
		{"no dedupe table", Config{Client: c, TriggersTable: "a", RecordsTable: "b"}, "no dedupe table"},
		{"negative retention", Config{Client: c, TriggersTable: "a", RecordsTable: "b", DedupeTable: "c", Retention: -1}, "negative retention"},
		{"ok", Config{Client: c, TriggersTable: "a", RecordsTable: "b", DedupeTable: "c"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil || s.retention != record.DefaultRetention || s.now == nil {
					t.Fatalf("New: %v %+v", err, s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTableDefinitions(t *testing.T) {
	defs := TableDefinitions(TableNames{Triggers: "t", Records: "r", Dedupe: "d"})
	if len(defs) != 3 {
		t.Fatalf("%d tables", len(defs))
	}
	var got []string
	for _, d := range defs {
		desc := aws.ToString(d.Create.TableName) + ":" + aws.ToString(d.Create.KeySchema[0].AttributeName)
		for _, g := range d.Create.GlobalSecondaryIndexes {
			desc += " " + aws.ToString(g.IndexName)
		}
		if d.TTLAttribute != "" {
			desc += " ttl=" + d.TTLAttribute
		}
		if d.Create.BillingMode != "PAY_PER_REQUEST" {
			t.Errorf("%s billing %s", desc, d.Create.BillingMode)
		}
		got = append(got, desc)
	}
	want := "t:name by-namespace|r:trigger by-failure ttl=expires_at|d:key ttl=expires_at"
	if g := strings.Join(got, "|"); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
}

func TestCreateTablesTwice(t *testing.T) {
	s := newStore(t, newClock(time.Now()), 0)
	if err := s.CreateTables(ctx); err != nil {
		t.Fatalf("second CreateTables must accept existing tables: %v", err)
	}
}

func TestTriggers(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := newStore(t, c, 0).Triggers()
	for _, x := range []trigger.Trigger{tr("b", "ns1"), tr("a", "ns1"), tr("c", "ns2")} {
		got, err := ts.Create(ctx, x)
		if err != nil || got.Version != 1 || !got.UpdatedAt.Equal(c.now()) {
			t.Fatalf("create %s: %+v %v", x.Name, got, err)
		}
	}
	if _, err := ts.Create(ctx, tr("a", "x")); !errors.Is(err, trigger.ErrExists) {
		t.Errorf("create twice: %v", err)
	}
	a, err := ts.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := tr("a", "ns1")
	if a.URL != want.URL || a.Headers["Authorization"] != "Bearer x" || a.Secrets[0] != "whsec_abc" || a.Timeout != want.Timeout ||
		a.Version != 1 || !a.UpdatedAt.Equal(c.now()) || !a.Enabled || a.Actions[0] != event.PushImage {
		t.Errorf("round trip: %+v", a)
	}
	if l, err := ts.Namespace(ctx, "ns1"); err != nil || names(l) != "a,b" {
		t.Errorf("ns1 = %s %v", names(l), err)
	}
	if l, err := ts.Namespace(ctx, "none"); err != nil || len(l) != 0 {
		t.Errorf("unknown namespace = %v %v", l, err)
	}
	if l, err := ts.List(ctx); err != nil || names(l) != "a,b,c" {
		t.Errorf("list = %s %v", names(l), err)
	}

	// Move b to ns2: the namespace index follows.
	c.add(time.Minute)
	b, _ := ts.Get(ctx, "b")
	b.Namespace = "ns2"
	b, err = ts.Update(ctx, b)
	if err != nil || b.Version != 2 || !b.UpdatedAt.Equal(c.now()) {
		t.Fatalf("update: %+v %v", b, err)
	}
	if got, _ := ts.Get(ctx, "b"); got.Version != 2 || got.Namespace != "ns2" {
		t.Errorf("get after update: %+v", got)
	}
	if l, _ := ts.Namespace(ctx, "ns1"); names(l) != "a" {
		t.Errorf("ns1 after move = %s", names(l))
	}
	if l, _ := ts.Namespace(ctx, "ns2"); names(l) != "b,c" {
		t.Errorf("ns2 after move = %s", names(l))
	}

	stale := b
	stale.Version = 1
	if _, err := ts.Update(ctx, stale); !errors.Is(err, trigger.ErrConflict) || !strings.Contains(err.Error(), "stored version 2, yours 1") {
		t.Errorf("stale update: %v", err)
	}
	if err := ts.Delete(ctx, "b", 1); !errors.Is(err, trigger.ErrConflict) {
		t.Errorf("stale delete: %v", err)
	}
	if err := ts.Delete(ctx, "b", 2); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := ts.Get(ctx, "b"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if err := ts.Delete(ctx, "b", 0); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}
	if err := ts.Delete(ctx, "b", 7); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("delete missing with a version: %v", err)
	}
	missing := tr("zz", "x")
	missing.Version = 1
	if _, err := ts.Update(ctx, missing); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
	if l, _ := ts.Namespace(ctx, "ns2"); names(l) != "c" {
		t.Errorf("ns2 after delete = %s", names(l))
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Errorf("delete any version: %v", err)
	}
	if l, _ := ts.List(ctx); names(l) != "c" {
		t.Errorf("list after deletes = %s", names(l))
	}
}

func TestConcurrentUpdatesOneWins(t *testing.T) {
	ts := newStore(t, newClock(time.Now()), 0).Triggers()
	base, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	var wins, conflicts atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x := base
			x.Description = fmt.Sprint(i)
			<-start
			_, err := ts.Update(ctx, x)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(x.Description)
			case errors.Is(err, trigger.ErrConflict):
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 9 {
		t.Fatalf("wins %d conflicts %d", wins.Load(), conflicts.Load())
	}
	got, _ := ts.Get(ctx, "a")
	if got.Version != 2 || got.Description != winner.Load() {
		t.Errorf("stored %+v, winner %v", got, winner.Load())
	}
}

func TestRecords(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rs := newStore(t, c, 24*time.Hour).Records()
	put := func(task, trig string, st record.Status, attempt int) {
		t.Helper()
		r := record.Record{TaskID: task, Trigger: trig, Status: st, Attempt: attempt, Time: c.now(), Action: event.PushImage, HTTPStatus: 200, Latency: time.Millisecond}
		if err := rs.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		c.add(time.Minute)
	}
	put("t1", "a", record.Retrying, 1)
	put("t1", "a", record.Success, 2)
	put("t2", "b", record.Failed, 1)
	put("t3", "a", record.Untriggered, 0)
	list := func(q record.Query) string {
		t.Helper()
		recs, err := rs.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.TaskID+":"+string(r.Status))
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all newest first", record.Query{}, "t3:untriggered t2:failed t1:success t1:retrying"},
		{"by trigger", record.Query{Trigger: "a"}, "t3:untriggered t1:success t1:retrying"},
		{"by task", record.Query{TaskID: "t1"}, "t1:success t1:retrying"},
		{"by status", record.Query{Status: record.Failed}, "t2:failed"},
		{"trigger and status", record.Query{Trigger: "a", Status: record.Success}, "t1:success"},
		{"task and status", record.Query{TaskID: "t1", Status: record.Retrying}, "t1:retrying"},
		{"task and other trigger", record.Query{TaskID: "t1", Trigger: "b"}, ""},
		{"limit", record.Query{Limit: 2}, "t3:untriggered t2:failed"},
		{"limit by trigger", record.Query{Trigger: "a", Limit: 1}, "t3:untriggered"},
		{"limit with filter", record.Query{Trigger: "a", Status: record.Retrying, Limit: 1}, "t1:retrying"},
		{"since", record.Query{Since: c.now().Add(-150 * time.Second)}, "t3:untriggered t2:failed"},
		{"since by trigger", record.Query{Trigger: "a", Since: c.now().Add(-150 * time.Second)}, "t3:untriggered"},
		{"unknown trigger", record.Query{Trigger: "zz"}, ""},
		{"unknown task", record.Query{TaskID: "zz"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.q); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// Fields survive the round trip.
	recs, _ := rs.List(ctx, record.Query{TaskID: "t2"})
	if len(recs) != 1 || recs[0].HTTPStatus != 200 || recs[0].Latency != time.Millisecond || recs[0].Attempt != 1 ||
		!recs[0].Time.Equal(time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)) {
		t.Errorf("round trip: %+v", recs)
	}

	// Retention: a day later the old records are hidden on every path,
	// though nothing deleted them (TTL is lazy; dynalite has none).
	c.add(24 * time.Hour)
	put("t4", "a", record.Success, 1)
	for _, q := range []record.Query{{}, {Trigger: "a"}, {TaskID: "t1"}, {Status: record.Failed}, {Since: time.Unix(0, 0)}} {
		want := ""
		if q.TaskID == "" && q.Status == "" {
			want = "t4:success"
		}
		if got := list(q); got != want {
			t.Errorf("after retention %+v: %q, want %q", q, got, want)
		}
	}
}

func TestRecordExpiresAtAndDefaults(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newStore(t, c, time.Hour)
	// No time: the store's clock. No trigger and no task: still stored.
	if err := s.Records().Put(ctx, record.Record{Status: record.Blocked}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records().List(ctx, record.Query{})
	if err != nil || len(recs) != 1 || !recs[0].Time.Equal(c.now()) || recs[0].Trigger != "" {
		t.Fatalf("%+v %v", recs, err)
	}
	out, err := s.db.GetItem(ctx, dynamoGet(s.tables.Records, noTrigger, sortKey(recs[0])))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := getN(out.Item, TTLAttribute); !ok || n != c.now().Add(time.Hour).Unix() {
		t.Errorf("%s = %d, want time + retention", TTLAttribute, n)
	}
}

func TestRecordsManyPages(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rs := newStore(t, c, 0).Records()
	for i := 0; i < 120; i++ {
		st := record.Success
		if i%10 == 0 {
			st = record.Failed
		}
		if err := rs.Put(ctx, record.Record{TaskID: fmt.Sprintf("t%03d", i), Trigger: "a", Status: st, Time: c.now()}); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
	}
	all, err := rs.List(ctx, record.Query{})
	if err != nil || len(all) != record.DefaultLimit || all[0].TaskID != "t119" {
		t.Fatalf("default limit: %d %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if !all[i].Time.Before(all[i-1].Time) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	failed, err := rs.List(ctx, record.Query{Trigger: "a", Status: record.Failed, Limit: 5})
	if err != nil || len(failed) != 5 || failed[0].TaskID != "t110" || failed[4].TaskID != "t070" {
		t.Errorf("filtered: %+v %v", failed, err)
	}
}

func TestDedupe(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newStore(t, c, 0)
	claim := func(key string) bool {
		t.Helper()
		ok, err := s.Claim(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim("k") || claim("k") {
		t.Fatal("first claim must win, the second lose")
	}
	if !claim("other") {
		t.Fatal("another key is independent")
	}
	c.add(59 * time.Second)
	if claim("k") {
		t.Fatal("a key is held for its ttl")
	}
	c.add(time.Second)
	if !claim("k") {
		t.Fatal("an expired key can be claimed again")
	}
	if err := s.Release(ctx, "k"); err != nil || !claim("k") {
		t.Fatal("a released key can be claimed again", err)
	}
	if err := s.Release(ctx, "never-claimed"); err != nil {
		t.Errorf("release of an unknown key: %v", err)
	}

	// Racing claims: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Claim(ctx, "race", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d racing claims won", wins.Load())
	}
}

func TestMissingTable(t *testing.T) {
	s, err := New(Config{Client: client(endpoint, 1), TriggersTable: "nope", RecordsTable: "nope", DedupeTable: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Triggers().Namespace(ctx, "ns"); err == nil || !strings.Contains(err.Error(), "load triggers for ns: ") {
		t.Errorf("missing table: %v", err)
	}
}

// TestStoreDown points a store at a port where nothing listens: every call
// fails promptly with an error naming what it was doing.
func TestStoreDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, err := New(Config{Client: client("http://"+addr, 2), TriggersTable: "t", RecordsTable: "r", DedupeTable: "d"})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		what string
		call func(context.Context) error
	}{
		{"load triggers for ns", func(ctx context.Context) error { _, err := s.Triggers().Namespace(ctx, "ns"); return err }},
		{"get trigger a", func(ctx context.Context) error { _, err := s.Triggers().Get(ctx, "a"); return err }},
		{"list triggers", func(ctx context.Context) error { _, err := s.Triggers().List(ctx); return err }},
		{"create trigger a", func(ctx context.Context) error { _, err := s.Triggers().Create(ctx, tr("a", "ns")); return err }},
		{"update trigger a", func(ctx context.Context) error { _, err := s.Triggers().Update(ctx, tr("a", "ns")); return err }},
		{"delete trigger a", func(ctx context.Context) error { return s.Triggers().Delete(ctx, "a", 1) }},
		{"store record", func(ctx context.Context) error { return s.Records().Put(ctx, record.Record{TaskID: "t", Trigger: "a"}) }},
		{"list records", func(ctx context.Context) error { _, err := s.Records().List(ctx, record.Query{}); return err }},
		{"claim duplicate key", func(ctx context.Context) error { _, err := s.Claim(ctx, "k", time.Minute); return err }},
		{"release duplicate key", func(ctx context.Context) error { return s.Release(ctx, "k") }},
		{"create table", func(ctx context.Context) error { return s.CreateTables(ctx) }},
	}
	for _, c := range calls {
		t.Run(c.what, func(t *testing.T) {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			start := time.Now()
			err := c.call(cctx)
			if err == nil || !strings.Contains(err.Error(), c.what) {
				t.Errorf("error %v, want one mentioning %q", err, c.what)
			}
			if errors.Is(err, trigger.ErrNotFound) || errors.Is(err, trigger.ErrConflict) {
				t.Errorf("a transport error must not look like a verdict: %v", err)
			}
			if d := time.Since(start); d > 3500*time.Millisecond {
				t.Errorf("took %s", d)
			}
		})
	}
	// The cache does not hide the failure.
	ct := &CachedTriggers{Store: s.Triggers()}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := ct.Namespace(cctx, "ns"); err == nil {
		t.Error("cached store: no error")
	}
}

func dynamoGet(table, pk, sk string) *dynamodb.GetItemInput {
	return &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{attrTrigger: str(pk), attrSK: str(sk)},
		ConsistentRead: aws.Bool(true),
	}
}

// TestConflictFromReturnedItem covers DynamoDB's answer with the stored
// item (ReturnValuesOnConditionCheckFailure=ALL_OLD), which dynalite does not
// send: the verdict comes from the item, without another read.
func TestConflictFromReturnedItem(t *testing.T) {
	s, err := New(Config{Client: client("http://127.0.0.1:1", 1), TriggersTable: "t", RecordsTable: "r", DedupeTable: "d"})
	if err != nil {
		t.Fatal(err)
	}
	ccf := &types.ConditionalCheckFailedException{Item: map[string]types.AttributeValue{attrName: str("a"), attrVersion: num(4)}}
	err = s.Triggers().whyFailed(ctx, "a", 3, fmt.Errorf("wrapped: %w", ccf))
	if !errors.Is(err, trigger.ErrConflict) || !strings.Contains(err.Error(), "stored version 4, yours 3") {
		t.Errorf("got %v", err)
	}
	other := errors.New("boom")
	if err := s.Triggers().whyFailed(ctx, "a", 3, other); err != other {
		t.Errorf("other errors pass through: %v", err)
	}
}

// TestRecordsStatusIndex: only failed and blocked records carry the sparse
// index's key, one partition per status and day; List of such a status
// walks the days newest first, and the archive finds a task's trigger.
func TestRecordsStatusIndex(t *testing.T) {
	c := newClock(time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC))
	s := newStore(t, c, 7*24*time.Hour)
	rs := s.Records()
	put := func(task, trig string, st record.Status) record.Record {
		t.Helper()
		r := record.Record{TaskID: task, Trigger: trig, Status: st, Attempt: 1, Time: c.now()}
		if err := rs.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		c.add(time.Hour) // crosses midnight after the first
		return r
	}
	recs := []record.Record{
		put("t1", "a", record.Failed),
		put("t2", "b", record.Success),
		put("t3", "b", record.Blocked),
		put("t4", "a", record.Retrying),
		put("t5", "b", record.Failed),
	}
	for _, r := range recs {
		t.Run("item of "+r.TaskID, func(t *testing.T) {
			out, err := s.db.GetItem(ctx, dynamoGet(s.tables.Records, r.Trigger, sortKey(r)))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := getS(out.Item, attrStatusDay)
			want := ""
			if r.Status == record.Failed || r.Status == record.Blocked {
				want = string(r.Status) + "#" + r.Time.Format("2006-01-02")
			}
			if got != want || ok != (want != "") {
				t.Errorf("%s = %q, want %q", attrStatusDay, got, want)
			}
		})
	}
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"failed over two days", record.Query{Status: record.Failed}, "t5 t1"},
		{"failed, limit", record.Query{Status: record.Failed, Limit: 1}, "t5"},
		{"failed since", record.Query{Status: record.Failed, Since: c.now().Add(-2 * time.Hour)}, "t5"},
		{"blocked", record.Query{Status: record.Blocked}, "t3"},
		{"retrying (a scan)", record.Query{Status: record.Retrying}, "t4"},
		{"everything (a scan)", record.Query{}, "t5 t4 t3 t2 t1"},
		{"everything, limit", record.Query{Limit: 2}, "t5 t4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rs.List(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.TaskID)
			}
			if g := strings.Join(ids, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}

	// An archived task's records are read from its trigger's partition;
	// the archive item itself is never listed.
	if err := rs.Archive(ctx, delivery.Task{ID: "t2", Trigger: delivery.TriggerRef{Namespace: "ns", Name: "b"}, CreatedAt: recs[1].Time}); err != nil {
		t.Fatal(err)
	}
	got, err := rs.List(ctx, record.Query{TaskID: "t2"})
	if err != nil || len(got) != 1 || got[0].Status != record.Success {
		t.Errorf("task t2: %+v %v", got, err)
	}
	if all, err := rs.List(ctx, record.Query{}); err != nil || len(all) != len(recs) {
		t.Errorf("everything after an archive: %d records, %v", len(all), err)
	}
}
