// step-ca built from Debian's golang-github-smallstep-certificates-dev: the server is the package's
// commands.AppCommand; this file only wires it up as a program (Debian ships no cmd/step-ca).
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli"

	"github.com/smallstep/certificates/commands"
	"github.com/smallstep/cli-utils/command"
	_ "github.com/smallstep/cli-utils/command/version"
	"github.com/smallstep/cli-utils/step"
)

// Set at link time (-X main.version=... -X main.buildTime=...).
var (
	version   = "N/A"
	buildTime = "N/A"
)

func main() {
	step.Set("Smallstep CA", version, buildTime)
	app := cli.NewApp()
	app.Name = "step-ca"
	app.HelpName = "step-ca"
	app.Version = step.Version()
	app.Usage = "an online certificate authority for secure automated certificate management"
	app.UsageText = commands.AppCommand.UsageText
	app.Flags = append(app.Flags, commands.AppCommand.Flags...)
	app.Commands = command.Retrieve()
	app.Action = commands.AppCommand.Action
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
