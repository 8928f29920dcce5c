// Command loadgen measures `regtrigger serve` under load, the figures of
// issue 4: how many notifications per second serve accepts next to a bare
// net/http handler on the same machine in the same run, and how long a
// notification takes from its POST to its delivery at a steady rate.
//
// It needs nothing but a built regtrigger and runs everything on loopback:
//
//   - a webhook sink (in this process) that timestamps each delivery's first
//     arrival by its webhook-id and answers 204;
//   - `regtrigger serve` on a fresh store in a temporary directory (a bbolt
//     file, or a Pebble directory with -store pebble; durable queue on, as
//     always), with --allow-private 127.0.0.1/32, one
//     registry token and one trigger matching every push to public/nginx
//     that delivers, signed, to the sink;
//   - the baseline: this executable again (-bare-server), a net/http server
//     with serve's timeouts whose handler reads the body and answers 202.
//
// Every notification is a distinct Tencent TCR push of public/nginx (its own
// tag, occur_at now), so serve's duplicate check drops none.
//
// Phase "saturation": -c clients post in a closed loop (each sends the next
// notification when the previous answer is read) to the bare server, then to
// serve, -rounds times alternately, each round on a freshly started server;
// a round counts the 202 answers completed in -for after -warmup. The figure
// is the ratio of the median accepted/s, serve / bare. serve's dispatcher
// delivers to the sink during the round, as it would in production.
//
// Phase "steady": a fresh serve gets -rate notifications per second for
// -for, open loop (each is sent at its scheduled time from its own
// goroutine); latencies are measured from the scheduled time, to the 202
// answer and to the arrival at the sink, and reported as nearest-rank
// percentiles. "all" runs both, the steady phase first: on a shared virtual
// disk a steady run started right after the saturation rounds was sometimes
// seconds behind. Before each phase a one-second probe prints how long a
// 4 KiB write and fdatasync take in the store's directory, the disk's state
// at the time.
//
// Usage (Linux: it uses Statfs, Fdatasync and Pdeathsig):
//
//	make measure-serve                                        # = make build && go run ./tools/loadgen
//	go run ./tools/loadgen                                    # both phases, defaults
//	go run ./tools/loadgen -phase saturation -c 16 -rounds 3 -for 10s
//	go run ./tools/loadgen -phase steady -rate 200 -for 30s
//	go run ./tools/loadgen -data-dir /dev/shm                 # the store on tmpfs: what fsync costs
//	go run ./tools/loadgen -store bolt,pebble                 # both embedded stores, alternating
//
// Measurements from one machine: both servers and the generator share its
// cores, so the bare figure is bounded by the generator too.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	bin     string
	phase   string
	conc    int
	rounds  int
	warmup  time.Duration
	window  time.Duration
	rate    float64
	steady  time.Duration
	grace   time.Duration
	workers int
	dataDir string
	keep    bool
	stores  []string // serve's stores, alternated
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	bare := fs.String("bare-server", "", "internal: run as the bare baseline server on this address")
	fs.StringVar(&o.bin, "bin", "bin/regtrigger", "the regtrigger binary (make build)")
	fs.StringVar(&o.phase, "phase", "all", "saturation, steady or all")
	fs.IntVar(&o.conc, "c", 16, "saturation: concurrent clients")
	fs.IntVar(&o.rounds, "rounds", 3, "saturation: rounds per server, alternating")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "saturation: not counted at the start of each round")
	fs.DurationVar(&o.window, "for", 0, "measured time: per saturation round (default 10s) or of the steady run (default 30s)")
	fs.Float64Var(&o.rate, "rate", 200, "steady: notifications per second")
	fs.DurationVar(&o.grace, "grace", 60*time.Second, "steady: how long to wait for the last deliveries")
	fs.IntVar(&o.workers, "workers", 4, "serve --workers")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for serve's store file (default: the system's temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (store files, trigger files, serve logs)")
	stores := fs.String("store", "pebble", "serve's embedded `STORES`, comma-separated (pebble, bolt): each round runs each, alternating, and so does the steady phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bare != "" {
		return runBareServer(*bare)
	}
	o.stores = strings.Split(*stores, ",")
	for _, st := range o.stores {
		if st != "bolt" && st != "pebble" {
			return fmt.Errorf("-store %q: use bolt, pebble or bolt,pebble", *stores)
		}
	}
	o.steady = o.window
	if o.window == 0 {
		o.window, o.steady = 10*time.Second, 30*time.Second
	}
	switch {
	case o.phase != "all" && o.phase != "saturation" && o.phase != "steady":
		return fmt.Errorf("-phase %q: use saturation, steady or all", o.phase)
	case o.conc < 1 || o.rounds < 1 || o.rate <= 0 || o.workers < 1:
		return fmt.Errorf("-c, -rounds, -rate and -workers must be positive")
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.bin, err)
	}
	dir, err := os.MkdirTemp(o.dataDir, "regtrigger-loadgen-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("files kept in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	snk, err := startSink()
	if err != nil {
		return err
	}
	defer snk.close()
	cfg := serveConfig{bin: o.bin, dir: dir, token: randomHex(16), sinkURL: snk.url, workers: o.workers}
	gen := &bodies{run: "lg" + randomHex(4)}
	stopOnSignal(func() {
		if !o.keep {
			os.RemoveAll(dir)
		}
	})

	fmt.Printf("loadgen %s: %d CPUs (GOMAXPROCS %d), %s %s/%s; %s; store on %s (%s)\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		o.bin, dir, fsType(dir))
	// The steady phase first: a disk that has just absorbed the
	// saturation rounds' fsyncs can stay slow for a minute (virtual disks
	// throttle), which would show up as the steady run's latency.
	if o.phase != "saturation" {
		if err := steadyPhase(o, cfg, gen, snk); err != nil {
			return err
		}
	}
	if o.phase != "steady" {
		if err := saturationPhase(o, cfg, gen, snk); err != nil {
			return err
		}
	}
	return nil
}

// probeDisk prints how long fdatasync of a 4 KiB write takes in dir right
// now (bbolt syncs twice per commit): the disk's state before a phase.
func probeDisk(dir string) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		fmt.Println("disk probe:", err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for start := time.Now(); time.Since(start) < time.Second && len(ds) < 500; {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, 0); err != nil {
			fmt.Println("disk probe:", err)
			return
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			fmt.Println("disk probe:", err)
			return
		}
		ds = append(ds, time.Since(t0))
	}
	s := summarize(ds)
	fmt.Printf("disk: 4 KiB write + fdatasync in %s: p50 %s, p99 %s, max %s (%d samples)\n", dir, ms(s.P50), ms(s.P99), ms(s.Max), s.N)
}

func saturationPhase(o options, cfg serveConfig, gen *bodies, snk *sink) error {
	fmt.Println()
	probeDisk(cfg.dir)
	fmt.Printf("saturation: %d clients, closed loop, %v counted after %v of warm-up, %d rounds per server\n", o.conc, o.window, o.warmup, o.rounds)
	fmt.Printf("%-6s %-7s %12s %10s %10s %10s %14s  %s\n", "round", "server", "accepted/s", "p50", "p99", "max", "deliveries/s", "other answers")
	var bareRates []float64
	serveRates := map[string][]float64{}
	for r := 1; r <= o.rounds; r++ {
		for _, name := range append([]string{"bare"}, o.stores...) {
			var p *process
			var err error
			// Write back what earlier rounds left dirty, so their data
			// does not slow this round's fsyncs.
			syscall.Sync()
			if name == "bare" {
				p, err = startBare()
			} else {
				p, err = startServe(cfg, name, fmt.Sprintf("saturation-%s-%d", name, r))
			}
			if err != nil {
				return err
			}
			track(p)
			c := newClient(p.url, cfg.token, gen, o.conc)
			var s saturation
			if name == "bare" {
				s = saturate(c, o.conc, o.warmup, o.window, nil)
				bareRates = append(bareRates, s.rate())
			} else {
				s = saturate(c, o.conc, o.warmup, o.window, snk)
				serveRates[name] = append(serveRates[name], s.rate())
			}
			untrack(p)
			p.stop()
			deliveries := "-"
			if name != "bare" {
				deliveries = fmt.Sprintf("%.0f", perSecond(int(s.sinkN), s.window))
			}
			fmt.Printf("%-6d %-7s %12.0f %10s %10s %10s %14s  %s\n", r, name, s.rate(), ms(s.latency.P50), ms(s.latency.P99), ms(s.latency.Max), deliveries, statuses(s.other, s.errors))
		}
	}
	b := median(bareRates)
	for _, st := range o.stores {
		s := median(serveRates[st])
		fmt.Printf("median accepted/s: bare %.0f, serve on %s %.0f (range %.0f-%.0f); ratio serve / bare = %.3f\n", b, st, s, slices.Min(serveRates[st]), slices.Max(serveRates[st]), s/b)
	}
	return nil
}

func steadyPhase(o options, cfg serveConfig, gen *bodies, snk *sink) error {
	for _, st := range o.stores {
		if err := steadyRun(o, cfg, st, gen, snk); err != nil {
			return err
		}
	}
	return nil
}

// steadyRun is the steady phase on a fresh serve on store.
func steadyRun(o options, cfg serveConfig, store string, gen *bodies, snk *sink) error {
	syscall.Sync()
	fmt.Println()
	probeDisk(cfg.dir)
	p, err := startServe(cfg, store, "steady-"+store)
	if err != nil {
		return err
	}
	track(p)
	defer func() { untrack(p); p.stop() }()
	c := newClient(p.url, cfg.token, gen, 64)
	// A short warm-up: connections, the trigger cache, the first deliveries.
	_ = steady(c, o.rate, time.Second, snk, 10*time.Second)
	fmt.Printf("steady on %s: %.0f notifications/s for %v, open loop, latency from each one's scheduled send time\n", store, o.rate, o.steady)
	res := steady(c, o.rate, o.steady, snk, o.grace)
	fmt.Printf("sent %d, accepted %d, delivered %d, not delivered within %v: %d; latest send %s after schedule", res.sent, res.accepted, res.delivery.N, o.grace, res.missing, ms(res.maxLag))
	if other := statuses(res.other, res.errors); other != "" {
		fmt.Printf("; other answers: %s", other)
	}
	fmt.Println()
	fmt.Printf("%-18s %10s %10s %10s %10s\n", "", "p50", "p90", "p99", "max")
	for _, row := range []struct {
		name string
		s    Summary
	}{{"notify -> 202", res.answer}, {"notify -> delivery", res.delivery}} {
		fmt.Printf("%-18s %10s %10s %10s %10s\n", row.name, ms(row.s.P50), ms(row.s.P90), ms(row.s.P99), ms(row.s.Max))
	}
	if n := snk.repeated(); n > 0 {
		fmt.Printf("(%d deliveries arrived more than once)\n", n)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fsType names the file system holding dir (tmpfs makes fsync nearly free).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Clean(dir), &st); err != nil {
		return "file system unknown"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs"
	case 0xEF53:
		return "ext2/3/4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}

// Started servers, stopped if the run is interrupted.
var (
	runningMu sync.Mutex
	running   = map[*process]bool{}
)

func track(p *process)   { runningMu.Lock(); running[p] = true; runningMu.Unlock() }
func untrack(p *process) { runningMu.Lock(); delete(running, p); runningMu.Unlock() }

func signalNotify(ch chan os.Signal) { signal.Notify(ch, os.Interrupt, syscall.SIGTERM) }

// stopOnSignal stops the servers this run started on SIGINT or SIGTERM,
// then runs cleanup and exits.
func stopOnSignal(cleanup func()) {
	ch := make(chan os.Signal, 1)
	signalNotify(ch)
	go func() {
		<-ch
		runningMu.Lock()
		for p := range running {
			p.stop()
		}
		runningMu.Unlock()
		cleanup()
		os.Exit(130)
	}()
}
