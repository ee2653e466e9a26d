package caddymodule

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// warnSharedPorts logs a WARN for each TCP port of the config's HTTP
// servers that another process already listens on. Caddy opens its
// listeners with SO_REUSEPORT, so a second instance on a busy port starts
// without an error and the kernel splits connections between the two:
// with the memory store, random 401s and 404s. Sockets of this process
// (a reload's previous config, or this config's, whichever app started
// first) are not counted. Linux only: elsewhere /proc is missing and
// nothing is checked.
func (a *App) warnSharedPorts(ctx caddy.Context) {
	v, err := ctx.AppIfConfigured("http")
	if err != nil {
		return
	}
	httpApp, ok := v.(*caddyhttp.App)
	if !ok {
		return
	}
	repl := caddy.NewReplacer()
	var ports []uint
	for _, srv := range httpApp.Servers {
		for _, l := range srv.Listen {
			addr, err := caddy.ParseNetworkAddress(repl.ReplaceAll(l, ""))
			if err != nil || addr.IsUnixNetwork() || addr.IsFdNetwork() || !strings.HasPrefix(addr.Network, "tcp") {
				continue
			}
			for p := addr.StartPort; p <= addr.EndPort && p-addr.StartPort < maxCheckedPorts; p++ {
				ports = append(ports, p)
			}
		}
	}
	for _, p := range foreignListeners(ports) {
		a.logger.Warn("another process is already listening on this port; Caddy shares ports (SO_REUSEPORT), "+
			"so both would serve it and split the connections between them: stop the other process or choose another port",
			zap.Uint("port", p))
	}
}

// maxCheckedPorts bounds the ports checked for one listener address (a
// port range).
const maxCheckedPorts = 64

// foreignListeners returns those of ports that a TCP socket of another
// process listens on, read from /proc/net/tcp and tcp6 (sockets of every
// user) less the sockets in /proc/self/fd.
func foreignListeners(ports []uint) []uint {
	if len(ports) == 0 {
		return nil
	}
	own := map[string]bool{}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && strings.HasPrefix(link, "socket:[") {
			own[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var found []uint
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		lines := bufio.NewScanner(f)
		lines.Scan() // header
		for lines.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(lines.Text())
			const listen = "0A"
			if len(fields) < 10 || fields[3] != listen || own[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			port, err := strconv.ParseUint(hexPort, 16, 16)
			if err == nil && slices.Contains(ports, uint(port)) && !slices.Contains(found, uint(port)) {
				found = append(found, uint(port))
			}
		}
		f.Close()
	}
	slices.Sort(found)
	return found
}
