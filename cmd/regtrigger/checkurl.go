package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func newCheckURL() *cobra.Command {
	var (
		allow   []string
		send    bool
		format  string
		secret  string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "check-url [--allow-private CIDR]... [--send] URL",
		Short: "Check a webhook URL against the outbound rules, optionally sending a test event",
		Long: `check-url gives the verdict a delivery would get: the same rules (scheme and port,
no userinfo, the host's name), the same resolver, and the same check of every address
the name resolves to, with the same allow-list. Loopback, private, link-local and other
internal ranges are refused unless --allow-private names them; the cloud metadata and
credential endpoints (169.254.169.254, 168.63.129.16, fd00:ec2::254, ...) are refused in
every form whatever it names. A delivery never connects to a refused address; it tries
the others, so the URL is allowed when at least one address is.

With --send it then POSTs a sample pushImage event through the guarded client and prints
the answer. Exit status: 0 allowed (and the test send succeeded), 1 refused or the test
send failed, 2 a usage error (bad flags, an --allow-private entry that is not a CIDR or
that no allow-list may hold).

The addresses are checked again at connect time on every delivery, so a name that
resolves differently later (DNS rebinding) is still refused.`,
		Example: `  regtrigger check-url https://hooks.example.com/deploy
  regtrigger check-url --allow-private 127.0.0.1/32 --send http://127.0.0.1:9000/hook`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			prefixes, err := outbound.ParseCIDRs(allow)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--allow-private: %w", err)}
			}
			rules := trigger.Rules{AllowPrivate: prefixes}
			client, err := outbound.NewClient(outbound.Config{AllowPrivate: prefixes, Timeout: outbound.MaxTimeout, UserAgent: userAgent()})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer client.CloseIdleConnections()
			out := c.OutOrStdout()
			ctx, cancel := context.WithTimeout(c.Context(), 10*time.Second)
			defer cancel()
			res, err := client.Check(ctx, args[0])
			if res == nil {
				fmt.Fprintf(out, "url      %s\nverdict  blocked\n", outbound.Redact(args[0]))
				if u, perr := url.Parse(args[0]); perr == nil {
					if ip, perr := netip.ParseAddr(u.Hostname()); perr == nil {
						if hint := trigger.AllowHint(ip); hint != "" {
							return fail("%v (%s)", err, hint)
						}
					}
				}
				return fail("%v", err)
			}
			fmt.Fprintf(out, "url      %s\n", outbound.Redact(res.URL.String()))
			refused := 0
			for _, v := range res.Addrs {
				if v.Err != nil {
					refused++
					reason := blockedReason(v.Err)
					if hint := trigger.AllowHint(v.Addr); hint != "" {
						reason += " (" + hint + ")"
					}
					fmt.Fprintf(out, "address  %-40s refused: %s\n", v.Addr, reason)
				} else {
					fmt.Fprintf(out, "address  %-40s allowed\n", v.Addr)
				}
			}
			switch {
			case errors.Is(err, outbound.ErrBlocked):
				fmt.Fprintf(out, "verdict  blocked (every address is refused)\n")
				return fail("%v", err)
			case err != nil:
				fmt.Fprintf(out, "verdict  blocked\n")
				return fail("%v (a name that does not resolve is refused)", err)
			case refused > 0:
				fmt.Fprintf(out, "verdict  allowed (%d of %d addresses refused: a delivery never connects to those)\n", refused, len(res.Addrs))
			default:
				fmt.Fprintf(out, "verdict  allowed\n")
			}
			if !send {
				return nil
			}
			return sendTest(c, client, rules, res.URL.String(), format, secret, timeout)
		},
	}
	c.Flags().StringArrayVar(&allow, "allow-private", nil, "allow a private `CIDR` or address (repeatable), as serve --allow-private does")
	c.Flags().BoolVar(&send, "send", false, "POST a sample pushImage event and print the answer")
	c.Flags().StringVar(&format, "format", string(payload.Default), "payload format for --send")
	c.Flags().StringVar(&secret, "secret", "", "sign the test request with this whsec_ secret")
	c.Flags().DurationVar(&timeout, "timeout", trigger.DefaultTimeout, "deadline of the test request (at most 30s)")
	return c
}

// blockedReason is the guard's reason without the URL it already showed.
func blockedReason(err error) string {
	var be *outbound.BlockedError
	if errors.As(err, &be) {
		return be.Reason
	}
	return err.Error()
}

// sendTest makes one real delivery of a sample event through the engine,
// exactly as the dispatcher would: with the client that checked the URL
// (the same resolver and allow-list) and the trigger validated under the
// same allow-list, as serve validates its triggers.
func sendTest(c *cobra.Command, client *outbound.Client, rules trigger.Rules, url, format, secret string, timeout time.Duration) error {
	t := trigger.Trigger{
		Name: "check-url", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "regtrigger",
		URL: url, Format: payload.Format(format), Timeout: trigger.Duration(timeout),
	}
	if secret != "" {
		t.Secrets = []string{secret}
	}
	if ps := rules.Validate(&t); len(ps) > 0 {
		// The URL passed the guard already; what is left is the flags
		// (--format, --secret, --timeout): a usage error.
		code := 2
		var msgs []string
		for _, p := range ps {
			if p.Field == "url" {
				code = 1
			}
			msgs = append(msgs, p.Field+": "+p.Message)
		}
		return &exitError{code: code, err: errors.New(strings.Join(msgs, "; "))}
	}
	now := time.Now().UTC()
	ev := event.Event{
		Source: "regtrigger", Action: event.PushImage, Namespace: "regtrigger", Repository: "check-url",
		Tag: "test", Digest: "sha256:" + strings.Repeat("0", 64), ResourceURL: "registry.example.com/regtrigger/check-url:test",
		OccurredAt: now, Operator: "regtrigger check-url", Raw: []byte(`{"test":true}`),
	}
	engine := &delivery.Engine{Sender: client, Triggers: delivery.FixedTriggers(t), Policy: delivery.Policy{MaxAttempts: 1}, UserAgent: userAgent(), Logger: discardLogger()}
	out := engine.Deliver(c.Context(), delivery.NewTask(fmt.Sprintf("tsk_check_%d", now.UnixNano()), &t, ev, now))
	r := out.Record
	w := c.OutOrStdout()
	fmt.Fprintf(w, "sent     %s format, %s\n", t.Format, r.Latency.Round(time.Millisecond))
	if r.HTTPStatus != 0 {
		fmt.Fprintf(w, "answer   HTTP %d\n", r.HTTPStatus)
	}
	if r.Location != "" {
		fmt.Fprintf(w, "location %s (not followed)\n", r.Location)
	}
	fmt.Fprintf(w, "result   %s", r.Status)
	if r.ErrorClass != "" {
		fmt.Fprintf(w, " (%s: %s)", r.ErrorClass, r.Error)
	}
	fmt.Fprintln(w)
	if r.Status != record.Success {
		return fail("test delivery %s", r.Status)
	}
	return nil
}
