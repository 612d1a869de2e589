package org.fhirguard.hapi;

import ca.uhn.fhir.jpa.model.sched.IHapiScheduler;
import ca.uhn.fhir.jpa.sched.HapiNullScheduler;
import ca.uhn.fhir.jpa.sched.HapiSchedulerServiceImpl;

/**
 * HAPI's scheduler for a read instance: local jobs run (the search parameter and resource
 * change caches refresh, so a read instance sees what the write instance changed), clustered
 * jobs do not. Clustered jobs are the database-wide housekeeping (stale search cache cleanup,
 * expired conditional-create URL cleanup, batch job maintenance and reindexing): they write
 * tables the read role must not write, and the write instance runs them for everyone.
 */
public class ReadInstanceScheduler extends HapiSchedulerServiceImpl {
	@Override
	protected IHapiScheduler getClusteredScheduler() {
		return new HapiNullScheduler();
	}
}
