// Command regtrigger is the command-line face of regtrigger: it inspects
// registry bodies, tests trigger files against them, checks webhook URLs and
// (later) serves the local all-in-one and manages triggers and logs.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/signature"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail wraps err so main exits with code 1 and prints it on one line.
func fail(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the exit code: 0 success, 1 a failure of
// the work asked (bad body, invalid triggers, blocked URL), 2 a usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "regtrigger: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "regtrigger",
		Short: "Registry notifications in, safe webhook calls out",
		Long: `regtrigger gives any container registry the trigger feature managed registries sell:
when an image or chart is pushed, pulled or deleted, matching trigger rules fire and
call your webhooks, safely, with a log of every attempt.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newInspect(), newMatch(), newCheckURL(), newServe(), newTriggers(), newTasks(), newLogs(), newRedeliver(), newSink(), newSecret())
	return root
}

// userAgent is the User-Agent of every outbound request.
func userAgent() string { return "regtrigger/" + version }

// discardLogger drops log lines (the CLI prints its own results).
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newSecret() *cobra.Command {
	return &cobra.Command{
		Use:   "secret",
		Short: "Print a new Standard Webhooks signing secret (whsec_...)",
		Long: `secret prints a new random 32-byte signing secret in the whsec_ form a trigger's
secret field takes. Give the same value to the webhook server so it can verify the
webhook-signature header.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := signature.GenerateSecret()
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(c.OutOrStdout(), s)
			return nil
		},
	}
}
