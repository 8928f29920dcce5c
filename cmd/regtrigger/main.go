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
	"strings"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/signature"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// The exit codes of every command, documented once in the README:
//
//	0  success
//	1  the work asked failed: a body regtrigger cannot use, invalid
//	   triggers, a refused URL, a store that cannot be opened or reached
//	2  a usage error: an unknown command, flag or value, a missing
//	   argument; nothing was done
//
// A command returns usageErr(...) for a usage error it detects itself;
// cobra's own errors (flags, arguments, unknown commands) are usage errors
// too. Every other error a command returns is a failure of the work (1),
// whether or not it was made with fail: enforceExitCodes sees to that.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail wraps err so main exits with code 1 and prints it on one line.
func fail(format string, args ...any) error {
	return &exitError{code: exitFail, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the exit code (exitOK, exitFail or
// exitUsage). A usage error's line ends with where to read the usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if code == exitUsage {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "regtrigger: %v (see %s --help)\n", err, cmd.CommandPath())
	} else {
		fmt.Fprintf(stderr, "regtrigger: %v\n", err)
	}
	return code
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
	// Added now rather than by Execute, so that the walks below (and the
	// tests walking the tree) see them.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitUsage, err: err} })
	enforceExitCodes(root)
	return root
}

// enforceExitCodes makes every command of the tree follow the exit code
// table: an error a command's RunE returns without a code is a failure of
// the work (1), not a usage error; a command that only groups others
// (regtrigger, triggers, completion) is a usage error when run without one
// of them, after printing their list on standard error.
func enforceExitCodes(c *cobra.Command) {
	for _, sub := range c.Commands() {
		enforceExitCodes(sub)
	}
	switch {
	case c.RunE != nil:
		runE := c.RunE
		c.RunE = func(c *cobra.Command, args []string) error {
			err := runE(c, args)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				return &exitError{code: exitFail, err: err}
			}
			return err
		}
	case c.Run == nil && c.HasSubCommands():
		// The RunE makes cobra show the group as runnable ("regtrigger
		// [flags]"); its usage lists only "regtrigger [command]".
		tmpl := c.UsageTemplate()
		if fixed := strings.Replace(tmpl, "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1); fixed != tmpl {
			c.SetUsageTemplate(fixed)
		}
		c.RunE = func(c *cobra.Command, args []string) error {
			var names []string
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			if len(args) > 0 {
				return usageErr("unknown command %q for %q: use one of %s", args[0], c.CommandPath(), strings.Join(names, ", "))
			}
			fmt.Fprint(c.ErrOrStderr(), c.UsageString())
			return usageErr("%s needs a command: one of %s", c.CommandPath(), strings.Join(names, ", "))
		}
	}
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
				return fail("generate a secret: %v", err)
			}
			fmt.Fprintln(c.OutOrStdout(), s)
			return nil
		},
	}
}
