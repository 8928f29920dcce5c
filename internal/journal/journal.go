// Package journal is a write-ahead log: records appended to preallocated
// segment files and made durable (fdatasync) before the caller is told
// they are written. Concurrent appends share one write and one sync (group
// commit), so the cost of durability is one sync per batch, not per record.
//
// Each record gets a log sequence number (LSN), consecutive from the first
// record ever written. The owner applies records somewhere else (the
// embedded store applies them to its bbolt file in large transactions) and
// then releases them; Replay gives back, after a crash or a restart, the
// records written after a given LSN.
//
// Files. The journal is a directory of segments named seg-<index> and
// spares named spare-<index> (16 hex digits; an index is never used twice,
// segments' follow the write order). Each segment starts
// with a 32-byte header (magic, the journal's id, zeros) and holds frames:
//
//	length uint32 | crc32c uint32 (of lsn and data) | lsn uint64 | data
//
// big-endian. A segment is written once, front to back, at offsets whose
// blocks already exist (segments are filled with zeros when created, and
// reused once released), so a sync writes data and no file metadata. A
// frame never spans segments.
//
// Crash safety. A write is acknowledged only after its sync, so a crash can
// tear only writes nobody was told about. Reading a segment stops at the
// first frame that is short, fails its checksum or does not continue the
// LSNs: what follows it was never acknowledged, or belongs to the segment's
// earlier life as a spare. Every Open starts writing in a new segment, so a
// torn tail is never written after. A file becomes a segment complete: a
// new one is made under a .tmp name (removed at Open), a spare gets its
// header and an empty first frame, synced, before its rename; the
// directory is synced before the first frame is written. At Open, a
// segment whose records come before its predecessor's holds nothing, and
// one that skips records the owner has not applied is an error (ErrGap),
// never a silent loss; so is a read error.
//
// One process owns a journal: the owner's file lock (the bbolt file's) keeps
// others out.
package journal

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	headerSize = 32
	frameHead  = 16 // length, crc, lsn
	magic      = "RTJOURN1"

	// DefaultSegmentSize is the size of a segment file.
	DefaultSegmentSize = 16 << 20
	// maxSpares bounds the released segments kept for reuse.
	maxSpares = 2
	// maxBatch bounds the bytes of one group write.
	maxBatch = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ID names a journal; the owner keeps it with the data the journal belongs
// to, so that a journal copied next to other data is refused.
type ID [16]byte

// Errors.
var (
	// ErrForeign: the directory holds segments of another journal.
	ErrForeign = errors.New("the journal belongs to another store")
	// ErrTooLarge: a record does not fit in a segment.
	ErrTooLarge = errors.New("journal record too large")
	// ErrClosed: the journal is closed.
	ErrClosed = errors.New("journal closed")
	// ErrEmpty: a record has no bytes.
	ErrEmpty = errors.New("empty journal record")
	// ErrGap: records after the applied ones are missing (a segment was
	// deleted by hand, say): replaying would skip them.
	ErrGap = errors.New("journal records are missing")
)

// Options tune Open.
type Options struct {
	// SegmentSize is the size of a segment file (default
	// DefaultSegmentSize); it bounds the size of a record.
	SegmentSize int64
	// Applied is the LSN up to which the owner has applied records (from
	// an earlier run): records up to it are not replayed, and new ones
	// are numbered after it even if the journal holds fewer.
	Applied uint64
}

// Journal is an open journal. It is safe for concurrent use.
type Journal struct {
	dir     string
	id      ID
	segSize int64

	mu        sync.Mutex
	queue     []*Pending // submitted, not yet taken by the writer
	writing   bool       // a writer goroutine runs
	preparing bool       // a spare is being made
	next      uint64     // LSN of the next record submitted
	durable   uint64     // every record up to this LSN is durable
	err       error      // sticky: after a failed write or sync nothing more is written
	closed    bool
	idle      *sync.Cond // signalled when the writer or the spare maker stops
	segs      []*segment // oldest first; the last one is written to
	off       int64      // where the next frame goes in the last segment
	spares    []string
	nextSeg   uint64     // index of the next segment
	replay    []*segment // found at Open, not released yet
	buf       []byte
	// fsync is fdatasync; tests replace it to fail or to count.
	fsync func(*os.File) error
}

// segment is one segment file and the LSNs it holds (first > last when
// it holds none).
type segment struct {
	index       uint64
	path        string
	f           *os.File // nil for segments found at Open (read by Replay only)
	first, last uint64
}

// Open opens the journal in dir (created if missing), reading what its
// segments hold. Writing starts in a new segment.
func Open(dir string, id ID, opts Options) (*Journal, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < headerSize+frameHead+1 {
		return nil, fmt.Errorf("journal segment size %d is too small", opts.SegmentSize)
	}
	j := &Journal{dir: dir, id: id, segSize: opts.SegmentSize, next: 1, fsync: fdatasync}
	j.idle = sync.NewCond(&j.mu)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var segs []*segment
	for _, de := range names {
		name := de.Name()
		kind, hex, _ := strings.Cut(name, "-")
		index, perr := strconv.ParseUint(hex, 16, 64)
		switch {
		case strings.HasSuffix(name, ".tmp"):
			// A file being made when the process stopped.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("journal: %w", err)
			}
			continue
		case kind == "spare" && perr == nil:
			j.spares = append(j.spares, filepath.Join(dir, name))
		case kind == "seg" && perr == nil:
			segs = append(segs, &segment{index: index, path: filepath.Join(dir, name)})
		default:
			return nil, fmt.Errorf("journal: unexpected file %s in %s", name, dir)
		}
		j.nextSeg = max(j.nextSeg, index+1) // names are never used twice
	}
	slices.SortFunc(segs, func(a, b *segment) int { return cmp.Compare(a.index, b.index) })
	// Each segment holds consecutive records; from one segment to the
	// next they continue. A segment whose records come before its
	// predecessor's holds a spare's old records (a crash before its first
	// frame was cleared): nothing. One that skips records the owner has
	// not applied means records are missing.
	var last uint64
	for _, sg := range segs {
		if err := j.scan(sg); err != nil {
			return nil, err
		}
		switch {
		case sg.first > sg.last: // empty
		case last > 0 && sg.first <= last:
			sg.first, sg.last = 1, 0
		case sg.first > max(last, opts.Applied)+1:
			return nil, fmt.Errorf("journal %s: %w: %s starts at record %d, but records up to %d only were found or applied", dir, ErrGap, sg.path, sg.first, max(last, opts.Applied))
		default:
			last = sg.last
		}
	}
	j.replay = segs
	j.next = max(last, opts.Applied) + 1
	j.durable = j.next - 1
	return j, nil
}

// scan reads sg's header and frames, setting first and last (first >
// last when it holds none).
func (j *Journal) scan(sg *segment) error {
	f, err := os.Open(sg.path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	sg.first, sg.last = 1, 0
	var hdr [headerSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		if readErr(err) == nil {
			return nil // too short to hold a record: empty
		}
		return fmt.Errorf("journal: %s: %w", sg.path, err)
	}
	if hdr == [headerSize]byte{} {
		return nil // a file of zeros whose header was never written: empty
	}
	if err := j.checkHeader(hdr[:], sg.path); err != nil {
		return err
	}
	err = Scan(f, 0, func(lsn uint64, _ []byte) error {
		if sg.first > sg.last {
			sg.first = lsn
		}
		sg.last = lsn
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: %s: %w", sg.path, err)
	}
	return nil
}

func (j *Journal) checkHeader(hdr []byte, path string) error {
	if string(hdr[:8]) != magic {
		return fmt.Errorf("journal: %s is not a journal segment", path)
	}
	if ID(hdr[8:24]) != j.id {
		return fmt.Errorf("journal: %s: %w (move the journal directory away, or use the store file it belongs with)", path, ErrForeign)
	}
	return nil
}

// Scan reads frames from r (positioned after a segment's header) and calls
// fn for each valid one, in order, until a frame is short, fails its
// checksum or does not continue the LSNs: after+1 first when after > 0,
// then one more each. It returns fn's error, or r's other than the end of
// the data. The data passed to fn is only valid during the call.
func Scan(r io.Reader, after uint64, fn func(lsn uint64, data []byte) error) error {
	var head [frameHead]byte
	var data []byte
	want := after + 1
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return readErr(err)
		}
		n := binary.BigEndian.Uint32(head[0:4])
		sum := binary.BigEndian.Uint32(head[4:8])
		lsn := binary.BigEndian.Uint64(head[8:16])
		if n == 0 || (after > 0 && lsn != want) || lsn == 0 {
			return nil
		}
		if n > maxRecord {
			return nil
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			return readErr(err)
		}
		if crc32.Update(crc32.Checksum(head[8:16], castagnoli), castagnoli, data) != sum {
			return nil
		}
		if err := fn(lsn, data); err != nil {
			return err
		}
		after, want = lsn, lsn+1
	}
}

// readErr is nil for the end of the data (a short or torn tail), else err:
// a read error is not the end of the log.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}

// maxRecord bounds what Scan believes a length field (a damaged one could
// otherwise ask for gigabytes).
const maxRecord = 1 << 30

// Last is the LSN of the last record written (0 for none).
func (j *Journal) Last() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next - 1
}

// Replay calls fn for every record found at Open with an LSN above after,
// in order. Call it before the first Submit.
func (j *Journal) Replay(after uint64, fn func(lsn uint64, data []byte) error) error {
	j.mu.Lock()
	segs := slices.Clone(j.replay) // Release may change the list meanwhile
	j.mu.Unlock()
	for _, sg := range segs {
		if sg.first > sg.last || sg.last <= after {
			continue
		}
		f, err := os.Open(sg.path)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if _, err := f.Seek(headerSize, io.SeekStart); err != nil {
			f.Close()
			return fmt.Errorf("journal: %w", err)
		}
		// Open read these frames already: Scan stops after sg.last.
		err = Scan(f, sg.first-1, func(lsn uint64, data []byte) error {
			if lsn <= after {
				return nil
			}
			return fn(lsn, data)
		})
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Pending is a submission on its way to the disk.
type Pending struct {
	recs [][]byte
	last uint64
	done chan struct{}
	err  error
}

// LSN is the LSN of the submission's last record.
func (p *Pending) LSN() uint64 { return p.last }

// Wait returns when the submission is durable, or could not be written.
func (p *Pending) Wait() error {
	<-p.done
	return p.err
}

// Submit queues recs to be written and returns at once: Wait on the answer
// tells when they are durable. Submissions are written in the order of the
// Submit calls, their records with consecutive LSNs.
func (j *Journal) Submit(recs ...[]byte) *Pending {
	p := &Pending{recs: recs, done: make(chan struct{})}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		p.fail(ErrClosed)
		return p
	case j.err != nil:
		p.fail(j.err)
		return p
	}
	for _, r := range recs {
		if len(r) == 0 {
			p.fail(ErrEmpty) // a frame of length 0 marks the end of a segment
			return p
		}
		if int64(len(r)) > j.segSize-headerSize-frameHead {
			p.fail(fmt.Errorf("%w: %d bytes, a segment holds %d", ErrTooLarge, len(r), j.segSize-headerSize-frameHead))
			return p
		}
	}
	j.next += uint64(len(recs))
	p.last = j.next - 1
	j.queue = append(j.queue, p)
	if !j.writing {
		j.writing = true
		go j.write()
	}
	return p
}

// Append writes recs and returns the last one's LSN once they are durable.
func (j *Journal) Append(recs ...[]byte) (uint64, error) {
	p := j.Submit(recs...)
	return p.last, p.Wait()
}

// fail ends the submission with err (nil: durable).
func (p *Pending) fail(err error) {
	p.err = err
	close(p.done)
}

// Durable is the LSN up to which every record is on disk.
func (j *Journal) Durable() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.durable
}

// Err is the error that stopped the journal, or nil.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// write is the writer goroutine: it writes the queued submissions, as many
// as fit in one batch, syncs, acknowledges them, and goes on until the
// queue is empty.
func (j *Journal) write() {
	for {
		j.mu.Lock()
		if len(j.queue) == 0 || j.err != nil {
			for _, p := range j.queue {
				p.fail(j.err)
			}
			j.queue = nil
			j.writing = false
			j.idle.Broadcast()
			j.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(j.queue) && (n == 0 || size < maxBatch) {
			for _, r := range j.queue[n].recs {
				size += frameHead + len(r)
			}
			n++
		}
		batch := slices.Clone(j.queue[:n])
		j.queue = append(j.queue[:0], j.queue[n:]...)
		j.mu.Unlock()

		err := j.writeBatch(batch)
		j.mu.Lock()
		if err != nil {
			j.err = fmt.Errorf("journal write failed, nothing more is written until a restart: %w", err)
			err = j.err
		} else {
			j.durable = batch[len(batch)-1].last
		}
		j.mu.Unlock()
		for _, p := range batch {
			p.fail(err)
		}
	}
}

// writeBatch writes the frames of batch to the segments (starting a new one
// when the next frame does not fit) and syncs what it wrote.
func (j *Journal) writeBatch(batch []*Pending) error {
	buf := j.buf[:0]
	seg, off := j.active()
	var last uint64 // LSN of the last frame in buf
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := seg.f.WriteAt(buf, off); err != nil {
			return err
		}
		if err := j.fsync(seg.f); err != nil {
			return err
		}
		off += int64(len(buf))
		buf = buf[:0]
		j.mu.Lock()
		seg.last, j.off = last, off
		j.mu.Unlock()
		return nil
	}
	for _, p := range batch {
		lsn := p.last - uint64(len(p.recs)) + 1
		for _, r := range p.recs {
			size := int64(frameHead + len(r))
			if seg == nil || off+int64(len(buf))+size > j.segSize {
				if err := flush(); err != nil {
					return err
				}
				var err error
				if seg, err = j.rotate(lsn); err != nil {
					return err
				}
				off = headerSize
			}
			buf = appendFrame(buf, lsn, r)
			last = lsn
			lsn++
		}
	}
	err := flush()
	j.buf = buf[:0]
	return err
}

// active is the segment being written and the offset of its next frame
// (nil before the first write since Open).
func (j *Journal) active() (*segment, int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.segs) == 0 {
		return nil, 0
	}
	return j.segs[len(j.segs)-1], j.off
}

// appendFrame appends the frame of one record.
func appendFrame(buf []byte, lsn uint64, data []byte) []byte {
	var head [frameHead]byte
	binary.BigEndian.PutUint32(head[0:4], uint32(len(data)))
	binary.BigEndian.PutUint64(head[8:16], lsn)
	sum := crc32.Update(crc32.Checksum(head[8:16], castagnoli), castagnoli, data)
	binary.BigEndian.PutUint32(head[4:8], sum)
	return append(append(buf, head[:]...), data...)
}

// rotate starts the next segment, whose first record will be lsn. A spare
// (a released segment, or a file made for it) gets the header and an empty
// first frame, synced, before it is renamed to the segment's name; a new
// file is made in full under a temporary name. Either way the directory is
// synced before anything is written to the segment, so a crash leaves a
// spare, a .tmp file (removed at Open) or a valid empty segment.
func (j *Journal) rotate(lsn uint64) (*segment, error) {
	j.mu.Lock()
	index := j.nextSeg
	j.nextSeg++
	var spare string
	if n := len(j.spares); n > 0 {
		spare, j.spares = j.spares[n-1], j.spares[:n-1]
	}
	j.prepareLocked() // the next rotation's
	j.mu.Unlock()

	path := filepath.Join(j.dir, fmt.Sprintf("seg-%016x", index))
	var f *os.File
	if spare != "" {
		f = j.reuse(spare, path)
	}
	if f == nil {
		// No spare, or it could not be used (removed by hand, say).
		var err error
		if f, err = j.create(path); err != nil {
			return nil, err
		}
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return nil, err
	}
	sg := &segment{index: index, path: path, f: f, first: lsn, last: lsn - 1}
	j.mu.Lock()
	j.segs = append(j.segs, sg)
	j.off = headerSize
	j.mu.Unlock()
	return sg, nil
}

// reuse makes the spare at spare the empty segment at path; nil if it
// cannot (the caller makes a new file then).
func (j *Journal) reuse(spare, path string) *os.File {
	f, err := os.OpenFile(spare, os.O_RDWR, 0o600)
	if err != nil {
		return nil
	}
	if err := j.begin(f); err != nil {
		f.Close()
		return nil
	}
	if err := j.fsync(f); err != nil {
		f.Close()
		return nil
	}
	if err := os.Rename(spare, path); err != nil {
		f.Close()
		return nil
	}
	return f
}

// begin writes a segment's header and an empty first frame, so that a
// spare's old frames can never be read as this segment's; the caller syncs.
func (j *Journal) begin(f *os.File) error {
	var b [headerSize + frameHead]byte
	copy(b[:8], magic)
	copy(b[8:24], j.id[:])
	_, err := f.WriteAt(b[:], 0)
	return err
}

// prepareLocked makes a spare in the background when none is ready, so
// that the writer does not stop to fill a new file with zeros when the
// segment it writes is full. The caller holds j.mu. Each rotation asks for
// the next one; a journal that is only read (a CLI command) makes none.
func (j *Journal) prepareLocked() {
	if j.preparing || len(j.spares) > 0 || j.closed {
		return
	}
	j.preparing = true
	path := filepath.Join(j.dir, fmt.Sprintf("spare-%016x", j.nextSeg))
	j.nextSeg++
	go func() {
		f, err := j.create(path)
		if err == nil {
			err = f.Close()
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		j.preparing = false
		switch {
		case err != nil:
		case len(j.spares) >= maxSpares:
			os.Remove(path) // released segments came first
		default:
			j.spares = append(j.spares, path)
		}
		// A failure is not fatal: rotate makes the file itself then.
		j.idle.Broadcast()
	}()
}

// create makes a new segment file at path: filled with zeros to the
// segment size, with its header, synced, under path+".tmp" until complete.
func (j *Journal) create(path string) (*os.File, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	err = j.fill(f)
	if err == nil {
		err = j.begin(f)
	}
	if err == nil {
		err = f.Sync() // made once: the file's size and blocks too
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return f, nil
}

// fill writes zeros over the segment size of f.
func (j *Journal) fill(f *os.File) error {
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < j.segSize; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), j.segSize-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// Release tells the journal that every record up to upTo has been applied
// elsewhere: segments holding only such records (and found at Open, or
// written to since and no longer written) are kept as spares or deleted.
func (j *Journal) Release(upTo uint64) error {
	j.mu.Lock()
	var gone []*segment
	j.replay = slices.DeleteFunc(j.replay, func(sg *segment) bool {
		if sg.last <= upTo {
			gone = append(gone, sg)
			return true
		}
		return false
	})
	for len(j.segs) > 1 && j.segs[0].last <= upTo {
		gone = append(gone, j.segs[0])
		j.segs = j.segs[1:]
	}
	j.mu.Unlock()
	var errs []error
	for _, sg := range gone {
		if sg.f != nil {
			errs = append(errs, sg.f.Close())
		}
		j.mu.Lock()
		keep := len(j.spares) < maxSpares
		j.mu.Unlock()
		if !keep {
			errs = append(errs, os.Remove(sg.path))
			continue
		}
		// Listed only once renamed: the writer may take it at once.
		spare := filepath.Join(j.dir, fmt.Sprintf("spare-%016x", sg.index))
		if err := os.Rename(sg.path, spare); err != nil {
			errs = append(errs, err)
			continue
		}
		j.mu.Lock()
		j.spares = append(j.spares, spare)
		j.mu.Unlock()
	}
	if len(gone) > 0 {
		// So that a released segment does not come back next to the
		// records after it (harmless, but untidy).
		errs = append(errs, syncDir(j.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("journal: release: %w", err)
	}
	return nil
}

// Close waits for the writer to finish what was submitted and closes the
// segment files. Submissions after Close fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	j.closed = true
	for j.writing || j.preparing {
		j.idle.Wait()
	}
	segs := j.segs
	j.segs = nil
	j.mu.Unlock()
	var errs []error
	for _, sg := range segs {
		errs = append(errs, sg.f.Close())
	}
	return errors.Join(errs...)
}

// syncDir syncs a directory, so that the files created or renamed in it
// survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}
