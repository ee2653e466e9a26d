package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authgate/authgate/authcore"
)

const sessionUsage = `usage: caddy authgate session list <user> (--redis URL) [--prefix P] [--users-file PATH]
       caddy authgate session revoke <user> (<session id> | --all) (--redis URL) [--prefix P] [--users-file PATH]
       caddy authgate user unlock <user> (--redis URL) [--prefix P] [--users-file PATH]
       authgate session ... / authgate user unlock ...   (the same, in the binary built from cmd/authgate)

Administers the sessions of a gateway on Redis, as the Manage API's session
routes do (scope manage.session.admin): every node sees a change at once.

  list    one line per live session of the user: id, created, lastUsed,
          kind (api | browser), stepped-up method, client address, user agent
  revoke  ends one session (its id is the sid claim of its tokens), or with
          --all every session of the user, on every node
  unlock  (a user command) lifts the user's lockout

<user> is a credentials id, a userName or an email, looked up among the
users kept in the store and, with --users-file, in the gateway's users file.

targets:
  --redis URL       the Redis of "store redis <url>" (default: $AUTHGATE_REDIS_URL)
  --prefix P        the store's key_prefix (default "authgate:")
  --users-file PATH the gateway's users_file, to find users that live there

exit status: 0 done, 1 failed, 2 usage error
`

// SessionCommand is `session`. cmd/authgate also registers it at the top
// level, as the short form `authgate session ...`.
func SessionCommand() Command {
	return Command{
		Name:  "session",
		Usage: "<list|revoke> <user> [<session id> | --all] --redis URL",
		Short: "Lists and ends a user's sessions on a gateway's Redis",
		Long:  sessionUsage,
		Run:   runSession,
	}
}

// adminCmd is one run of `session list|revoke` or `user unlock`.
type adminCmd struct {
	what                        string // "session list", "session revoke", "user unlock"
	stdout, stderr              io.Writer
	redisURL, prefix, usersFile string
	all                         bool
	args                        []string
}

// runSession runs `authgate session ...` and returns its exit code.
func runSession(args []string, _ *os.File, stdout, stderr io.Writer) int {
	if len(args) == 0 || slices.Contains([]string{"help", "-h", "--help"}, args[0]) {
		fmt.Fprint(stderr, sessionUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	switch args[0] {
	case "list", "revoke":
	default:
		fmt.Fprintf(stderr, "authgate session: unknown command %q\n(session help prints the usage)\n", args[0])
		return exitUsage
	}
	return runAdmin("session "+args[0], args[1:], stdout, stderr)
}

// runAdmin parses the shared flags of the administration commands and
// runs one.
func runAdmin(what string, args []string, stdout, stderr io.Writer) int {
	c := &adminCmd{what: what, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("authgate "+what, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.redisURL, "redis", os.Getenv("AUTHGATE_REDIS_URL"), "")
	fs.StringVar(&c.prefix, "prefix", "authgate:", "")
	fs.StringVar(&c.usersFile, "users-file", "", "")
	if what == "session revoke" {
		fs.BoolVar(&c.all, "all", false, "")
	}
	// Positional arguments may come before or after the flags.
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, sessionUsage)
				return 0
			}
			return c.usage("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	c.args = rest
	switch {
	case c.redisURL == "":
		return c.usage("--redis URL (or $AUTHGATE_REDIS_URL) is required: sessions live in the gateway's Redis")
	case len(c.args) == 0:
		return c.usage("name the user")
	case what == "session revoke" && c.all == (len(c.args) == 2):
		return c.usage("give a session id or --all, not both and not neither")
	case len(c.args) > 2 || (len(c.args) == 2 && what != "session revoke"):
		return c.usage("unexpected argument %q", c.args[len(c.args)-1])
	}
	return c.run()
}

func (c *adminCmd) usage(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "authgate %s: %s\n(session help prints the usage)\n", c.what, fmt.Sprintf(format, args...))
	return exitUsage
}

func (c *adminCmd) failed(err error) int {
	fmt.Fprintf(c.stderr, "authgate %s: %v\n", c.what, err)
	return exitFailed
}

// run opens the gateway's store with the core's services over it, so that
// the command applies the very rules of the Manage API's session routes.
func (c *adminCmd) run() int {
	store, err := openStore(c.redisURL, c.prefix)
	if err != nil {
		return c.failed(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var users authcore.UserDirectory = authcore.NewStoreUsers(store, nil)
	if c.usersFile != "" {
		static, err := authcore.LoadUsersFile(c.usersFile)
		if err != nil {
			return c.failed(err)
		}
		users = authcore.NewCombinedUsers(static, authcore.NewStoreUsers(store, nil))
	}
	// No token is issued or checked here: the key only satisfies New.
	key, _ := authcore.NewHMACKey(make([]byte, authcore.MinHMACKeyLen))
	core, err := authcore.New(authcore.Options{Store: store, Users: users, Tokens: authcore.NewTokens("authgate-cli", key, time.Now)})
	if err != nil {
		return c.failed(err)
	}
	user, err := findUser(ctx, core.Accounts, c.args[0])
	if err != nil {
		return c.failed(err)
	}
	switch c.what {
	case "session list":
		return c.list(ctx, core, user)
	case "session revoke":
		ended := "every session"
		if c.all {
			err = core.Sessions.EndAllSessions(ctx, user)
		} else {
			ended = "session " + c.args[1]
			err = core.Sessions.EndSession(ctx, user, c.args[1])
		}
		if err != nil {
			return c.failed(err)
		}
		fmt.Fprintf(c.stdout, "ended %s of user %s\n", ended, user.ID)
	case "user unlock":
		if err := core.Passwords.Unlock(ctx, user); err != nil {
			return c.failed(err)
		}
		fmt.Fprintf(c.stdout, "unlocked user %s\n", user.ID)
	}
	return 0
}

func (c *adminCmd) list(ctx context.Context, core *authcore.Services, user *authcore.User) int {
	sessions, err := core.Sessions.ListSessions(ctx, user)
	if err != nil {
		return c.failed(err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tKIND\tSTEPPED UP\tCLIENT\tUSER AGENT")
	for _, s := range sessions {
		kind := s.Kind
		if kind == "" {
			kind = authcore.KindAPI
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.UTC().Format(time.RFC3339),
			s.LastUsed.UTC().Format(time.RFC3339), kind, orDash(s.StepUpMethod), orDash(s.ClientIP), orDash(s.UserAgent))
	}
	if err := tw.Flush(); err != nil {
		return c.failed(err)
	}
	return 0
}

// findUser looks ref up as a credentials id, a userName, then an email.
func findUser(ctx context.Context, accounts *authcore.Accounts, ref string) (*authcore.User, error) {
	for _, lookup := range []func(context.Context, string) (*authcore.User, error){
		accounts.User, accounts.UserByName, accounts.UserByEmail,
	} {
		u, err := lookup(ctx, ref)
		if err == nil {
			return u, nil
		}
		// Accounts.User reads a missing id as a dead session's token.
		if !errors.Is(err, authcore.ErrUserNotFound) && !errors.Is(err, authcore.ErrInvalidToken) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no user %q (a credentials id, userName or email; users of a users file need --users-file)", strings.TrimSpace(ref))
}
