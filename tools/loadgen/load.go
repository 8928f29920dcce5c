package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// client posts notifications: keep-alive connections, no proxy, no
// compression, one idle connection kept per concurrent client.
type client struct {
	http  *http.Client
	url   string // .../v1/notify
	token string
	gen   *bodies
}

func newClient(baseURL, token string, gen *bodies, conns int) *client {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: baseURL + "/v1/notify", token: token, gen: gen}
}

// post sends one fresh notification and returns the status and the answer.
func (c *client) post(ctx context.Context) (int, []byte, error) {
	body, _ := c.gen.next(time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// saturation is one closed-loop run's result.
type saturation struct {
	accepted int           // 202 answers completed inside the window
	other    map[int]int   // other statuses inside the window
	errors   int           // transport errors inside the window
	window   time.Duration // measured time
	latency  Summary       // POST -> answer of the window's requests
	sinkN    int64         // deliveries arriving at the sink inside the window
}

func (s saturation) rate() float64 { return perSecond(s.accepted, s.window) }

// saturate runs conc clients, each posting as fast as answers come back,
// for warmup + window; only requests that complete inside the window count.
func saturate(c *client, conc int, warmup, window time.Duration, snk *sink) saturation {
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+window)
	ctx, cancel := context.WithDeadline(context.Background(), until.Add(5*time.Second))
	defer cancel()
	var (
		mu  sync.Mutex
		res = saturation{other: map[int]int{}, window: window}
		lat []time.Duration
		wg  sync.WaitGroup
	)
	var sinkFrom int64
	if snk != nil {
		go func() {
			time.Sleep(time.Until(from))
			mu.Lock()
			sinkFrom = snk.count.Load()
			mu.Unlock()
		}()
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			accepted, errs := 0, 0
			other := map[int]int{}
			for {
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				status, _, err := c.post(ctx)
				t1 := time.Now()
				if t1.Before(from) || t1.After(until) {
					continue
				}
				switch {
				case err != nil:
					errs++
				case status == http.StatusAccepted:
					accepted++
					mine = append(mine, t1.Sub(t0))
				default:
					other[status]++
				}
			}
			mu.Lock()
			res.accepted += accepted
			res.errors += errs
			for k, v := range other {
				res.other[k] += v
			}
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	if snk != nil {
		time.Sleep(time.Until(until))
		n := snk.count.Load()
		mu.Lock()
		res.sinkN = n - sinkFrom
		mu.Unlock()
	}
	wg.Wait()
	res.latency = summarize(lat)
	return res
}

// steadyResult is one open-loop run's result.
type steadyResult struct {
	sent, accepted int
	other          map[int]int
	errors         int
	missing        int           // accepted tasks that never reached the sink
	maxLag         time.Duration // latest a request went out after its scheduled time
	answer         Summary       // scheduled time -> 202 answer read
	delivery       Summary       // scheduled time -> arrival at the sink
}

// answer202 is the part of serve's 202 answer read here.
type answer202 struct {
	Events []struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
	} `json:"events"`
}

// steady posts rate notifications per second for d, each from its own
// goroutine at its scheduled time (open loop), then waits up to grace for
// every accepted task to reach the sink.
func steady(c *client, rate float64, d time.Duration, snk *sink, grace time.Duration) steadyResult {
	n := int(rate * d.Seconds())
	type sent struct {
		at     time.Time // scheduled
		lag    time.Duration
		status int
		err    error
		taskID string
		answer time.Duration
	}
	out := make([]sent, n)
	ctx, cancel := context.WithTimeout(context.Background(), d+grace+30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	for i := range n {
		at := scheduled(start, rate, i)
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &out[i]
			s.at = at
			s.lag = time.Since(at)
			status, body, err := c.post(ctx)
			s.answer = time.Since(at)
			s.status, s.err = status, err
			if err == nil && status == http.StatusAccepted {
				var a answer202
				if err := json.Unmarshal(body, &a); err != nil || len(a.Events) != 1 || len(a.Events[0].Tasks) != 1 {
					s.err = fmt.Errorf("202 answer without exactly one task: %.200s", body)
					return
				}
				s.taskID = a.Events[0].Tasks[0].ID
			}
		}()
	}
	wg.Wait()
	res := steadyResult{sent: n, other: map[int]int{}}
	var ids []string
	var answers []time.Duration
	for _, s := range out {
		res.maxLag = max(res.maxLag, s.lag)
		switch {
		case s.err != nil:
			res.errors++
		case s.status != http.StatusAccepted:
			res.other[s.status]++
		default:
			res.accepted++
			ids = append(ids, s.taskID)
			answers = append(answers, s.answer)
		}
	}
	wctx, wcancel := context.WithTimeout(context.Background(), grace)
	defer wcancel()
	res.missing = snk.waitAll(wctx, ids)
	var deliveries []time.Duration
	for _, s := range out {
		if s.taskID == "" {
			continue
		}
		if t, ok := snk.arrival(s.taskID); ok {
			deliveries = append(deliveries, t.Sub(s.at))
		}
	}
	res.answer = summarize(answers)
	res.delivery = summarize(deliveries)
	return res
}

// statuses formats a status histogram ("" when empty).
func statuses(m map[int]int, errs int) string {
	var parts []string
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", m[k], k))
	}
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", errs))
	}
	return strings.Join(parts, ", ")
}
