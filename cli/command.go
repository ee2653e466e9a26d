// Package cli is authgate's command line, registered as Caddy commands so
// that every Caddy built with authgate's modules (xcaddy's included) has
// it: `caddy authgate user ...` manages users and `caddy authgate
// hash-password` makes argon2id hashes. Caddy's own `hash-password` is
// left as Caddy ships it.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "authgate",
		Usage: "<command> [args]",
		Short: "Manages authgate's users and sessions and hashes passwords (user, session, hash-password)",
		Long: `
authgate's own commands. Each has its help: caddy authgate help <command>.

  user           adds, changes, lists and deletes the users of "users store"
                 (in Redis) or of a users file; reads passwords without echo;
                 user unlock lifts a lockout
  session        lists and ends a user's sessions on the gateway's Redis
  hash-password  reads a password and prints its argon2id hash for a users
                 file or a service_client

Secrets never go on the command line: passwords are typed when asked, or
given as one line on standard input.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(cobraCommand(UserCommand()), cobraCommand(SessionCommand()), cobraCommand(hashPasswordCommand))
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				// Cobra gives only the root a help command; `caddy authgate
				// help user` is what a user of `git help commit` types.
				if args[0] == "help" {
					if len(args) == 1 {
						return cmd.Help()
					}
					if sub, _, err := cmd.Find(args[1:]); err == nil && sub != cmd {
						return sub.Help()
					}
					args = args[1:]
				}
				cmd.SilenceUsage = true
				return fmt.Errorf("unknown command %q for %q (caddy authgate help lists them)", args[0], cmd.CommandPath())
			}
		},
	})
}

// Command is one of authgate's commands: its help and a function that
// runs it on the raw arguments (the commands parse their own flags, and
// refuse secret ones with a reason) and returns the exit code.
type Command struct {
	// Name, Usage, Short and Long are as in caddycmd.Command: the
	// command's name, its arguments, one line for `help` lists, and its
	// full help text.
	Name, Usage, Short, Long string
	// Run runs the command on its arguments and returns the exit status:
	// 0 done, 1 failed, 2 usage error.
	Run func(args []string, stdin *os.File, stdout, stderr io.Writer) int
}

// UserCommand is `user`. cmd/authgate also registers it at the top level,
// as the short form `authgate user ...`.
func UserCommand() Command {
	return Command{
		Name:  "user",
		Usage: "<add|set|passwd|list|del|enrol> (--redis URL | --file PATH) [flags]",
		Short: "Manages the users of users store (Redis) or of a users file",
		Long:  userUsage,
		Run:   runUser,
	}
}

var hashPasswordCommand = Command{
	Name:  "hash-password",
	Short: "Reads a password and prints its argon2id hash for a users file",
	Long:  hashPasswordUsage,
	Run:   hashPassword,
}

// Register registers c as a top-level Caddy command.
func Register(c Command) {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name: c.Name, Usage: c.Usage, Short: c.Short, Long: c.Long,
		CobraFunc: func(cmd *cobra.Command) { configure(cmd, c) },
	})
}

func cobraCommand(c Command) *cobra.Command {
	cmd := &cobra.Command{Use: c.Name + " " + c.Usage, Short: c.Short, Long: c.Long}
	configure(cmd, c)
	return cmd
}

// errFailed makes caddycmd.Main exit with status 1; the command has said
// why on stderr already.
var errFailed = errors.New("failed")

// configure makes cmd run c on its raw arguments. Exit status 1 reaches
// caddycmd.Main as an error it exits 1 on; others through caddycmd's
// own exit-code wrapper, the only way to carry a status through it.
func configure(cmd *cobra.Command, c Command) {
	cmd.DisableFlagParsing = true
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		code := c.Run(args, os.Stdin, os.Stdout, os.Stderr)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		switch code {
		case 0:
			return nil
		case 1:
			return errFailed
		}
		return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return code, nil })(cmd, args)
	}
}
