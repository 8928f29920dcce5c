package main

import (
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/registry"
)

// maxBody bounds what the CLI reads, as the receiver does.
const maxBody = 1 << 20

// bodyFlags are the flags shared by commands that read a registry body.
type bodyFlags struct {
	source  string
	headers []string
}

func (f *bodyFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.source, "source", "", "force the registry format `NAME` instead of detecting it (one of: "+strings.Join(registry.Sources(), ", ")+")")
	c.Flags().StringArrayVarP(&f.headers, "header", "H", nil, "a request `HEADER` the registry sent, \"Name: value\" (repeatable; e.g. the Content-Type of a Distribution envelope, GitHub's X-GitHub-Event, Nexus's X-Nexus-Webhook-Id)")
}

// check refuses an unknown --source and a malformed --header as usage
// errors, before any work is done.
func (f *bodyFlags) check() (http.Header, error) {
	if f.source != "" && !slices.Contains(registry.Sources(), f.source) {
		return nil, usageErr("--source %q is not a registry format regtrigger knows: use one of %s, or leave it out to detect the format", f.source, strings.Join(registry.Sources(), ", "))
	}
	h := http.Header{}
	for _, kv := range f.headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErr("--header %q: want \"Name: value\", e.g. -H 'X-GitHub-Event: package'", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// readEvents reads a body from the file named in args (or stdin for none or
// "-") and parses it.
func (f *bodyFlags) readEvents(c *cobra.Command, args []string) ([]event.Event, error) {
	h, err := f.check()
	if err != nil {
		return nil, err
	}
	var r io.Reader = c.InOrStdin()
	name := "standard input"
	if len(args) == 1 && args[0] != "-" {
		file, err := os.Open(args[0])
		if err != nil {
			return nil, fail("read the body: %v", err)
		}
		defer file.Close()
		r, name = file, args[0]
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fail("read the body: %v", err)
	}
	if len(body) > maxBody {
		return nil, fail("%s is larger than %d bytes, the most a registry may send", name, maxBody)
	}
	evs, err := registry.Parse(registry.Notification{Body: body, Header: h, ReceivedAt: time.Now().UTC()}, f.source)
	if err != nil {
		return nil, fail("%s: %v", name, err)
	}
	return evs, nil
}
