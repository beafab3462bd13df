// The `dfn` command: one subcommand per module in cli/commands/, each registering itself here.

import { Command } from 'commander';
import { dfnVersion } from '../lib/version.js';
import { registerDeliveriesCommand } from './commands/deliveries.js';
import { registerGatewayCommand } from './commands/gateway.js';
import { registerKubeAccessCommand } from './commands/kube-access.js';
import { registerOperatorCommand } from './commands/operator.js';
import { registerReplayCommand } from './commands/replay.js';
import { registerRunnerCommand } from './commands/runner.js';
import { registerTestCommand } from './commands/test.js';
import { registerUpCommand } from './commands/up.js';

const program = new Command('dfn')
  .description('Destination functions on Kubernetes: test functions locally, run the gateway and runners.')
  .version(dfnVersion(), '-V, --version', 'print the version of dfn')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride((err) => {
    // commander exits 1 on usage errors; usage errors are status 2 across dfn.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerTestCommand(program);
registerUpCommand(program);
registerGatewayCommand(program);
registerRunnerCommand(program);
registerOperatorCommand(program);
registerDeliveriesCommand(program);
registerReplayCommand(program);
registerKubeAccessCommand(program);

await program.parseAsync(process.argv);
