// Evaluate IAM requests against identity policies with @cloud-copilot/iam-simulate (AGPL-3.0,
// a test-time tool installed by tests/support/iam.py, never shipped).
// stdin: {"identityPolicies": [{name, policy}], "requests": [{principal, action, resource,
// accountId, context}]}; stdout: one answer per request ("Allowed", "ImplicitlyDenied",
// "ExplicitlyDenied", or {"errors": ...}).
const { runSimulation } = require('@cloud-copilot/iam-simulate');

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', async () => {
  const job = JSON.parse(input);
  const answers = [];
  for (const r of job.requests) {
    const result = await runSimulation({
      request: {
        principal: r.principal,
        action: r.action,
        resource: { resource: r.resource, accountId: r.accountId },
        contextVariables: r.context || {},
      },
      identityPolicies: job.identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    }, {});
    if (result.errors) {
      answers.push({ errors: result.errors });
    } else {
      answers.push(result.result.analysis ? result.result.analysis.result : result.result);
    }
  }
  process.stdout.write(JSON.stringify(answers));
});
