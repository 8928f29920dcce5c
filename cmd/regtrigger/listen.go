package main

import (
	"errors"
	"net"
	"syscall"
)

// listen opens a TCP listener on addr for the command's flag (--addr).
// The errors a user meets most say which port and what to do: a port in
// use (another serve, the sink, any other program), a port that needs
// privileges, an address this machine does not have, a malformed address.
func listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	host, port, splitErr := net.SplitHostPort(addr)
	switch {
	case splitErr != nil:
		return nil, usageErr("%s %q: want HOST:PORT, e.g. 127.0.0.1:8080 or :8080 for every interface", flag, addr)
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fail("listen on %s: port %s is already in use (another regtrigger serve or sink, or another program): stop it, or pick a free port with %s %s:PORT", addr, port, flag, host)
	case errors.Is(err, syscall.EACCES):
		return nil, fail("listen on %s: port %s needs privileges on this machine: use a port above 1023 with %s %s:PORT", addr, port, flag, host)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fail("listen on %s: this machine has no address %s: use 127.0.0.1, an address of one of its interfaces, or an empty host (%s :%s) for all of them", addr, host, flag, port)
	}
	return nil, fail("listen on %s: %v", addr, err)
}
