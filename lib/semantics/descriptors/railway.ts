/**
 * Railway's public GraphQL API (https://docs.railway.com/reference/public-api).
 *
 * Field names below were checked against Railway's published schema as used by the official
 * CLI (github.com/railwayapp/cli, `src/gql/mutations/strings/*.graphql`) and a graphql-codegen
 * copy of the `Mutation` type of backboard.railway.com/graphql/v2. Mutations not listed here are
 * still classified by the generic rule (names containing delete/remove/destroy/… are
 * destructive, other mutations write, queries read).
 */
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

const irreversible = (name: string, resourceArg: string, resourceKind: string) =>
  ({ name, effect: "irreversible", resourceArg, resourceKind }) as const;

export const railway: ServiceDescriptorInput = {
  id: "railway",
  title: "Railway",
  hosts: ["backboard.railway.com", "backboard.railway.app"],
  scheme: "https",
  protocol: "graphql",
  graphql: {
    paths: ["/graphql/v2"],
    resourceArgs: [
      "volumeId",
      "volumeInstanceId",
      "id",
      "serviceId",
      "deploymentId",
      "bucketId",
      "environmentId",
      "projectId",
      "workspaceId",
    ],
    fields: [
      // Data or infrastructure that cannot be brought back.
      irreversible("volumeDelete", "volumeId", "volume"),
      irreversible("volumeInstanceBackupDelete", "volumeInstanceBackupId", "backup"),
      irreversible("volumeInstanceBackupBatchDelete", "volumeInstanceId", "volumeInstance"),
      // Restoring overwrites the volume's current contents.
      irreversible("volumeInstanceBackupRestore", "volumeInstanceId", "volumeInstance"),
      irreversible("environmentDelete", "id", "environment"),
      irreversible("serviceDelete", "id", "service"),
      irreversible("projectDelete", "id", "project"),
      irreversible("projectScheduleDeleteForce", "id", "project"),
      irreversible("deploymentRemove", "id", "deployment"),
      irreversible("workspaceDelete", "id", "workspace"),
      irreversible("userDelete", "id", "user"),
      // Ownership leaves the account: cannot be undone by the agent's owner.
      irreversible("projectTransfer", "projectId", "project"),
      irreversible("projectTransferConfirm", "projectId", "project"),
      irreversible("projectTransferToTeam", "projectId", "project"),
      // An environment config patch applies whatever it holds, and it deletes a service, a volume
      // or a bucket named only as a key (`{"volumes": {"<id>": {"isDeleted": true}}}`): what the
      // dashboard's "delete" does, under a name that says nothing of it. Committing staged
      // changes applies a patch sent by an earlier request, which this one does not show.
      // Staging one changes nothing yet (the commit is judged).
      irreversible("environmentPatchCommit", "environmentId", "environment"),
      irreversible("environmentPatchCommitStaged", "environmentId", "environment"),
      { name: "environmentStageChanges", effect: "write", resourceArg: "environmentId", resourceKind: "environment" },
      // Destructive, recoverable in principle (grace period, re-creatable secrets).
      { name: "projectScheduleDelete", effect: "destructive", resourceArg: "id", resourceKind: "project" },
      { name: "privateNetworksForEnvironmentDelete", effect: "destructive", resourceArg: "environmentId", resourceKind: "environment" },
      { name: "bucketCredentialsReset", effect: "destructive", resourceArg: "bucketId", resourceKind: "bucket" },
      { name: "pluginReset", effect: "destructive", resourceArg: "id", resourceKind: "plugin" },
      { name: "pluginResetCredentials", effect: "destructive", resourceArg: "id", resourceKind: "plugin" },
      // `replace: true` removes every existing variable before writing the new set.
      { name: "variableCollectionUpsert", effect: "destructive", when: { "input.replace": true }, resourceArg: "input.serviceId", resourceKind: "service" },
      { name: "serviceDomainDelete", effect: "destructive", resourceArg: "id", resourceKind: "domain" },
      { name: "customDomainDelete", effect: "destructive", resourceArg: "id", resourceKind: "domain" },
    ],
  },
};
