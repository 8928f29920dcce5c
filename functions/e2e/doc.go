// Package e2e holds the end-to-end tests of the cloud functions: the real
// function binaries, built as the Makefile builds them and run the way their
// platform runs them (under AWS's Lambda Runtime Interface Emulator, which
// serves them the Lambda Runtime API; as Tencent SCF's RPC server),
// against dynalite and fauxqs on loopback and a local webhook target
// allowed through ALLOW_PRIVATE_CIDRS, as a user inside a VPC would.
//
// It has no non-test code.
package e2e
