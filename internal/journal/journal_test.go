package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

var testID = ID{1, 2, 3}

// small segments hold a few records each, so tests cross segments.
const small = 512

func open(t *testing.T, dir string, applied uint64) *Journal {
	t.Helper()
	j, err := Open(dir, testID, Options{SegmentSize: small, Applied: applied})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// replayed lists "lsn:data" of every record after after.
func replayed(t *testing.T, j *Journal, after uint64) []string {
	t.Helper()
	var out []string
	if err := j.Replay(after, func(lsn uint64, data []byte) error {
		out = append(out, fmt.Sprintf("%d:%s", lsn, data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// appendRecs appends rec(from) to rec(to).
func appendRecs(t *testing.T, j *Journal, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := j.Append(rec(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func rec(i int) []byte { return []byte(fmt.Sprintf("record-%03d-%s", i, strings.Repeat("x", i%40))) }

func want(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%d:%s", i, rec(i)))
	}
	return out
}

func segments(t *testing.T, dir string) (segs, spares int) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		switch {
		case strings.HasPrefix(de.Name(), "seg-"):
			segs++
		case strings.HasPrefix(de.Name(), "spare-") && !strings.HasSuffix(de.Name(), ".tmp"):
			spares++ // (a .tmp one is still being made)
		}
	}
	return segs, spares
}

func TestAppendReplayAcrossSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	for i := 1; i <= 40; i++ {
		lsn, err := j.Append(rec(i))
		if err != nil || lsn != uint64(i) {
			t.Fatalf("append %d: lsn %d, %v", i, lsn, err)
		}
	}
	if j.Durable() != 40 || j.Last() != 40 {
		t.Errorf("durable %d, last %d", j.Durable(), j.Last())
	}
	if n, _ := segments(t, dir); n < 5 {
		t.Fatalf("%d segments: the test wants records in several", n)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(rec(41)); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}

	j = open(t, dir, 0)
	if got := replayed(t, j, 0); !slices.Equal(got, want(1, 40)) {
		t.Errorf("replay:\n%v\nwant\n%v", got, want(1, 40))
	}
	if got := replayed(t, j, 25); !slices.Equal(got, want(26, 40)) {
		t.Errorf("replay after 25: %v", got)
	}
	// Numbering goes on; a second reopen sees both runs.
	if lsn, err := j.Append(rec(41), rec(42)); err != nil || lsn != 42 {
		t.Fatalf("append after reopen: %d, %v", lsn, err)
	}
	j.Close()
	j = open(t, dir, 0)
	if got := replayed(t, j, 0); !slices.Equal(got, want(1, 42)) {
		t.Errorf("replay after two runs: %v", got)
	}
}

func TestConcurrentAppendsShareSyncs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Hold the first sync until every other append is queued: they must
	// then share the next write and sync.
	var syncs atomic.Int32
	release := make(chan struct{})
	held := make(chan struct{})
	j.fsync = func(f *os.File) error {
		if syncs.Add(1) == 1 {
			close(held)
			<-release
		}
		return fdatasync(f)
	}
	first := j.Submit([]byte("first"))
	<-held // the writer holds the first record's sync
	const n = 100
	var wg sync.WaitGroup
	lsns := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			var err error
			if lsns[i], err = j.Append([]byte(fmt.Sprint("r", i))); err != nil {
				t.Error(err)
			}
		})
	}
	for {
		j.mu.Lock()
		queued := len(j.queue)
		j.mu.Unlock()
		if queued == n {
			break
		}
	}
	close(release)
	wg.Wait()
	if err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	// The first record's sync, then one for all the others (a new file
	// is synced by os.File.Sync, not counted here).
	if got := syncs.Load(); got > 2 {
		t.Errorf("%d appends took %d syncs, want at most 2", n+1, got)
	}
	slices.Sort(lsns)
	for i, l := range lsns {
		if l != uint64(i+2) {
			t.Fatalf("lsns %v: not 2..%d, each once", lsns, n+1)
		}
	}
}

func TestReleaseRecyclesSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	appendRecs(t, j, 1, 30)
	before, _ := segments(t, dir)
	if err := j.Release(30); err != nil {
		t.Fatal(err)
	}
	segs, spares := segments(t, dir)
	if segs != 1 || spares != maxSpares {
		t.Errorf("after release: %d segments (was %d), %d spares; want the one written to and %d spares", segs, before, spares, maxSpares)
	}
	// Spares are reused: the directory does not grow.
	for i := 31; i <= 90; i++ {
		if _, err := j.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		if err := j.Release(uint64(i - 10)); err != nil {
			t.Fatal(err)
		}
	}
	if segs, spares := segments(t, dir); segs+spares > 1+maxSpares {
		t.Errorf("%d segments and %d spares after recycling", segs, spares)
	}
	j.Close()
	// Reused spares held older records: none of them comes back.
	j = open(t, dir, 80)
	if got := replayed(t, j, 80); !slices.Equal(got, want(81, 90)) {
		t.Errorf("replay after 80: %v", got)
	}
	if lsn, err := j.Append(rec(91)); err != nil || lsn != 91 {
		t.Errorf("append: %d, %v", lsn, err)
	}
}

// lastSegment is the path of the segment with the highest index.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*"))
	if err != nil || len(m) == 0 {
		t.Fatal(m, err)
	}
	slices.Sort(m)
	return m[len(m)-1]
}

func TestTornTailIsDropped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j, err := Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendRecs(t, j, 1, 10)
	j.Close()
	// Damage record 8: a crash tore the write that held 8, 9 and 10.
	path := lastSegment(t, dir)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, rec(8))
	b[i+3] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	j, err = Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := replayed(t, j, 0); !slices.Equal(got, want(1, 7)) {
		t.Errorf("replay of a torn tail: %v", got)
	}
	// Writing goes on in a new segment, numbered after what survived.
	if lsn, err := j.Append(rec(8)); err != nil || lsn != 8 {
		t.Fatalf("append: %d, %v", lsn, err)
	}
	j.Close()
	j, err = Open(dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := replayed(t, j, 0); !slices.Equal(got, want(1, 8)) {
		t.Errorf("replay after rewriting: %v", got)
	}
}

func TestRenamedSpareHoldsNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	appendRecs(t, j, 1, 40)
	if err := j.Release(20); err != nil {
		t.Fatal(err)
	}
	j.Close()
	// A crash right after a spare was renamed to the next segment, before
	// its first frame was cleared: its old records must not count.
	spares, _ := filepath.Glob(filepath.Join(dir, "spare-*"))
	if len(spares) == 0 {
		t.Fatal("no spare")
	}
	if err := os.Rename(spares[0], filepath.Join(dir, "seg-00000000000000ff")); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, 20)
	if got := replayed(t, j, 20); !slices.Equal(got, want(21, 40)) {
		t.Errorf("replay: %v", got)
	}
	if j.Last() != 40 {
		t.Errorf("last %d, want 40", j.Last())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	appendRecs(t, j, 1, 40)
	j.Close()
	if _, err := Open(dir, ID{9}, Options{SegmentSize: small}); !errors.Is(err, ErrForeign) {
		t.Errorf("another id: %v", err)
	}
	// Records 1-40 were written; the owner applied none, but the first
	// segment is gone.
	first, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	slices.Sort(first)
	if err := os.Remove(first[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testID, Options{SegmentSize: small}); !errors.Is(err, ErrGap) {
		t.Errorf("missing records: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seg-zz"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testID, Options{SegmentSize: small, Applied: 40}); err == nil || !strings.Contains(err.Error(), "unexpected file") {
		t.Errorf("a stray file: %v", err)
	}
	if _, err := Open(t.TempDir(), testID, Options{SegmentSize: 10}); err == nil {
		t.Error("a segment too small for any record was accepted")
	}
}

func TestApplied(t *testing.T) {
	// Records were applied up to 100, and the journal was emptied (every
	// segment released): numbering goes on after 100.
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 100)
	if got := replayed(t, j, 100); len(got) != 0 {
		t.Errorf("replay: %v", got)
	}
	if lsn, err := j.Append([]byte("x")); err != nil || lsn != 101 {
		t.Errorf("append: %d, %v", lsn, err)
	}
}

func TestFailedSyncStopsTheJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	if _, err := j.Append([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	j.fsync = func(*os.File) error { return errors.New("EIO") }
	if _, err := j.Append([]byte("lost")); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("append with a failing sync: %v", err)
	}
	j.fsync = fdatasync
	// The state of the file is unknown after a failed sync: nothing more
	// is written, and nothing after the failure counts as durable.
	if _, err := j.Append([]byte("after")); err == nil || !strings.Contains(err.Error(), "until a restart") {
		t.Errorf("append after the failure: %v", err)
	}
	if j.Durable() != 1 || j.Err() == nil {
		t.Errorf("durable %d, err %v", j.Durable(), j.Err())
	}
}

func TestRecordTooLarge(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j"), 0)
	if _, err := j.Append(make([]byte, small)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a record larger than a segment: %v", err)
	}
	if _, err := j.Append(make([]byte, small-headerSize-frameHead)); err != nil {
		t.Errorf("a record that just fits: %v", err)
	}
}

func FuzzScan(f *testing.F) {
	var seed []byte
	for i := uint64(1); i <= 3; i++ {
		seed = appendFrame(seed, i, rec(int(i)))
	}
	f.Add(seed, uint64(0))
	f.Add(seed[:len(seed)-3], uint64(0))
	f.Add(seed, uint64(1))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, after uint64) {
		prev := after
		err := Scan(bytes.NewReader(b), after, func(lsn uint64, data []byte) error {
			if (prev > 0 || after > 0) && lsn != prev+1 {
				t.Fatalf("lsn %d after %d", lsn, prev)
			}
			if len(data) > len(b) {
				t.Fatalf("a %d-byte record from %d bytes", len(data), len(b))
			}
			prev = lsn
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestReleaseWhileWriting(t *testing.T) {
	// The writer takes spares as Release makes them: a spare must be
	// listed only once its file is in place.
	j := open(t, filepath.Join(t.TempDir(), "j"), 0)
	stop := make(chan struct{})
	released := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			select {
			case <-stop:
				released <- nil
				return
			default:
			}
			err = j.Release(j.Durable())
		}
		released <- err
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 300 {
				if _, err := j.Append(rec(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
}

func TestMissingSpareIsReplaced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	for i := 1; i <= 40; i++ {
		if _, err := j.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		if err := j.Release(uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	spares, _ := filepath.Glob(filepath.Join(dir, "spare-*"))
	for _, s := range spares {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	appendRecs(t, j, 41, 80) // after the spares were removed
}

func TestZeroFilledSegmentIsEmpty(t *testing.T) {
	// A file of zeros named as a segment (a crash while an older journal
	// made one): empty, not foreign.
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	appendRecs(t, j, 1, 10)
	j.Close()
	if err := os.WriteFile(filepath.Join(dir, "seg-00000000000000ff"), make([]byte, small), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seg-0000000000000100.tmp"), make([]byte, 7), 0o600); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, 0)
	if got := replayed(t, j, 0); !slices.Equal(got, want(1, 10)) {
		t.Errorf("replay: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "seg-0000000000000100.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a half-made file was left: %v", err)
	}
	// New segments are numbered after every name seen.
	appendRecs(t, j, 11, 40)
	j.Close()
	j = open(t, dir, 0)
	if got := replayed(t, j, 0); !slices.Equal(got, want(1, 40)) {
		t.Errorf("replay after more writes: %v", got)
	}
}

func TestMissingMiddleSegmentIsAGap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	appendRecs(t, j, 1, 60)
	j.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	slices.Sort(segs)
	if len(segs) < 4 {
		t.Fatalf("want several segments, have %v", segs)
	}
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testID, Options{SegmentSize: small, Applied: 2}); !errors.Is(err, ErrGap) {
		t.Errorf("records 1-60 written, 2 applied, a middle segment gone: %v, want ErrGap", err)
	}
	// Applied past the missing segment's records: nothing is missing.
	var s1 segment
	s1.path = segs[2]
	jj := &Journal{id: testID}
	if err := jj.scan(&s1); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, s1.first-1)
	if got := replayed(t, j, s1.first-1); !slices.Equal(got, want(int(s1.first), 60)) {
		t.Errorf("replay after %d: %v", s1.first-1, got)
	}
}

func TestEmptyRecordIsRefused(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j"), 0)
	if _, err := j.Append([]byte("a"), nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("an empty record: %v", err)
	}
	if lsn, err := j.Append([]byte("b")); err != nil || lsn != 1 {
		t.Errorf("the next record: %d, %v", lsn, err)
	}
}

func TestReleaseDuringReplay(t *testing.T) {
	// The owner may apply and release records while it replays them.
	dir := filepath.Join(t.TempDir(), "j")
	j := open(t, dir, 0)
	appendRecs(t, j, 1, 60)
	j.Close()
	j = open(t, dir, 0)
	var got []uint64
	err := j.Replay(0, func(lsn uint64, _ []byte) error {
		got = append(got, lsn)
		if lsn%20 == 0 {
			return j.Release(lsn)
		}
		return nil
	})
	if err != nil || len(got) != 60 {
		t.Errorf("replayed %d of 60 records: %v", len(got), err)
	}
}

// failingReader returns its bytes, then err.
type failingReader struct {
	b   []byte
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.err
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestScanReportsReadErrors(t *testing.T) {
	frames := appendFrame(appendFrame(nil, 1, []byte("a")), 2, []byte("b"))
	tests := []struct {
		name    string
		r       io.Reader
		n       int
		wantErr bool
	}{
		{"end of data", bytes.NewReader(frames), 2, false},
		{"torn tail", bytes.NewReader(frames[:len(frames)-1]), 1, false},
		{"I/O error", &failingReader{b: frames[:17], err: errors.New("input/output error")}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := Scan(tt.r, 0, func(uint64, []byte) error { n++; return nil })
			if n != tt.n || (err != nil) != tt.wantErr {
				t.Errorf("%d records, err %v; want %d, error %v", n, err, tt.n, tt.wantErr)
			}
		})
	}
}
