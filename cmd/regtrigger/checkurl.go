package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
		Long: `check-url applies the same rules as every delivery: scheme and port, no userinfo,
the host's name, and every address it resolves to (loopback, private, link-local,
metadata and other internal ranges are refused unless --allow-private names them).
With --send it then POSTs a sample pushImage event through the guarded client and
prints the answer. It exits 1 when the URL is refused or the test send fails.

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
			cfg := outbound.Config{AllowPrivate: prefixes, Timeout: outbound.MaxTimeout, UserAgent: userAgent()}
			out := c.OutOrStdout()
			u, err := cfg.CheckURL(args[0])
			if err != nil {
				fmt.Fprintf(out, "url      %s\nverdict  blocked\n", outbound.Redact(args[0]))
				return fail("%v", err)
			}
			fmt.Fprintf(out, "url      %s\n", outbound.Redact(u.String()))
			ctx, cancel := context.WithTimeout(c.Context(), 10*time.Second)
			defer cancel()
			host := u.Hostname()
			var addrs []netip.Addr
			if ip, err := netip.ParseAddr(host); err == nil {
				addrs = []netip.Addr{ip}
			} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
				fmt.Fprintf(out, "verdict  blocked\n")
				return fail("resolve %s: %v (a name that does not resolve is refused)", host, err)
			}
			blocked := false
			for _, a := range addrs {
				if err := outbound.CheckIP(a, prefixes); err != nil {
					blocked = true
					fmt.Fprintf(out, "address  %-40s refused: %s\n", a, blockedReason(err))
				} else {
					fmt.Fprintf(out, "address  %-40s allowed\n", a)
				}
			}
			if blocked {
				fmt.Fprintf(out, "verdict  blocked (every address must be allowed: one refused address could be the one dialled)\n")
				return fail("%s resolves to a refused address", host)
			}
			fmt.Fprintf(out, "verdict  allowed\n")
			if !send {
				return nil
			}
			return sendTest(c, cfg, u.String(), format, secret, timeout)
		},
	}
	c.Flags().StringArrayVar(&allow, "allow-private", nil, "allow a private CIDR or address (repeatable), as `regtrigger serve --allow-private` does")
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
// exactly as the dispatcher would.
func sendTest(c *cobra.Command, cfg outbound.Config, url, format, secret string, timeout time.Duration) error {
	client, err := outbound.NewClient(cfg)
	if err != nil {
		return fail("%v", err)
	}
	t := trigger.Trigger{
		Name: "check-url", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "regtrigger",
		URL: url, Format: payload.Format(format), Timeout: trigger.Duration(timeout),
	}
	if secret != "" {
		t.Secrets = []string{secret}
	}
	if ps := trigger.Validate(&t); len(ps) > 0 {
		var msgs []string
		for _, p := range ps {
			msgs = append(msgs, p.Field+": "+p.Message)
		}
		return &exitError{code: 2, err: errors.New(strings.Join(msgs, "; "))}
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
