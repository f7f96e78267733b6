/**
 * V8's sampling heap profiler, in process, counting every sampled allocation whether it is kept
 * or collected: what a CPU profile's "garbage collector" share is made of. (`--heap-prof` keeps
 * only what is still alive when the process exits, which says nothing about churn.) The result is
 * a `.heapprofile` that Chrome DevTools opens, or bench/support/profile-summary.ts summarises.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

export class AllocationSampler {
  private session: Session | null = null;

  private post<T>(method: string, params?: object): Promise<T> {
    return new Promise((resolve, reject) => this.session!.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T))));
  }

  async start(intervalBytes = 16 * 1024): Promise<void> {
    if (this.session) return;
    this.session = new Session();
    this.session.connect();
    await this.post("HeapProfiler.enable");
    await this.post("HeapProfiler.startSampling", { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  async stop(file: string): Promise<string> {
    if (!this.session) throw new Error("allocation sampling was not started");
    const { profile } = await this.post<{ profile: unknown }>("HeapProfiler.stopSampling");
    this.session.disconnect();
    this.session = null;
    writeFileSync(file, JSON.stringify(profile));
    return file;
  }
}
