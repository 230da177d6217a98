// One command's session: new SDK clients and the ledger, the clients destroyed when the work ends.
// Apart from clients.ts so the Lambda bundles, which import the clients, do not carry the ledger.
import { type Clients, createClients, destroyClients } from "./clients.js";
import { Ledger } from "./ledger/index.js";
import { resolveTableNames, type TableNames } from "./names.js";

/**
 * Runs one command's work with new clients and the ledger of `names`, and destroys the clients
 * afterwards whatever happens (their sockets would otherwise keep the process alive).
 */
export async function withClients<T>(
  work: (clients: Clients, ledger: Ledger) => Promise<T>,
  names: TableNames = resolveTableNames(),
): Promise<T> {
  const clients = createClients();
  try {
    return await work(clients, new Ledger(clients.doc, names.ledger));
  } finally {
    destroyClients(clients);
  }
}
