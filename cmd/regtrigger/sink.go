package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/signature"
)

// newSink is a tiny webhook receiver for trying regtrigger on one machine:
// it prints every request it gets and verifies Standard Webhooks signatures.
func newSink() *cobra.Command {
	var (
		addr   string
		secret string
		status int
	)
	c := &cobra.Command{
		Use:   "sink [--addr 127.0.0.1:9000] [--secret whsec_...]",
		Short: "Print the webhook requests regtrigger sends (a local test target)",
		Long: `sink listens on --addr and prints each request: method, path, headers (values of
Authorization and Cookie hidden) and body. With --secret it verifies the
webhook-signature header. It answers --status (default 200), so retries can be tried
with --status 500. Point a trigger at it and run serve with --allow-private 127.0.0.1/32.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if status < 100 || status > 599 {
				return usageErr("--status %d: use an HTTP status from 100 to 599, e.g. 500 to make regtrigger retry", status)
			}
			var secrets []signature.Secret
			if secret != "" {
				s, err := signature.ParseSecret(secret)
				if err != nil {
					return usageErr("--secret: %v (make one with regtrigger secret)", err)
				}
				secrets = append(secrets, s)
			}
			ln, err := listen(addr, "--addr")
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			fmt.Fprintf(out, "sink listening on http://%s/ (answers %d)\n", ln.Addr(), status)
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				var b strings.Builder
				fmt.Fprintf(&b, "--- %s %s %s\n", time.Now().Format(time.TimeOnly), r.Method, r.URL.Path)
				keys := make([]string, 0, len(r.Header))
				for k := range r.Header {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					v := strings.Join(r.Header[k], ", ")
					if k == "Authorization" || k == "Cookie" {
						v = "<hidden>"
					}
					fmt.Fprintf(&b, "%s: %s\n", k, v)
				}
				if len(secrets) > 0 {
					err := signature.Verify(secrets, r.Header.Get(signature.HeaderID), r.Header.Get(signature.HeaderTimestamp), body, r.Header.Get(signature.HeaderSignature), time.Now(), 5*time.Minute)
					if err != nil {
						fmt.Fprintf(&b, "signature: INVALID (%v)\n", err)
					} else {
						fmt.Fprintf(&b, "signature: valid\n")
					}
				}
				fmt.Fprintf(&b, "\n%s\n", body)
				fmt.Fprint(out, b.String())
				w.WriteHeader(status)
			})}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return fail("sink on %s: %v", ln.Addr(), err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:9000", "listen on this `HOST:PORT`")
	c.Flags().StringVar(&secret, "secret", "", "verify signatures with this whsec_ `SECRET`")
	c.Flags().IntVar(&status, "status", 200, "the HTTP `STATUS` to answer")
	return c
}
