package org.fhirguard.hapi;

import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.rest.annotation.Metadata;
import ca.uhn.fhir.rest.api.CacheControlDirective;
import ca.uhn.fhir.rest.api.Constants;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.servlet.http.HttpServletRequest;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.hl7.fhir.instance.model.api.IBaseConformance;

/**
 * HAPI's JPA CapabilityStatement, cached per server base instead of once for everyone.
 *
 * HAPI caches the statement for a minute whatever base URL the request had, and refreshes it
 * in the background from the request that found it stale: its implementation.url is then the
 * base of whichever request came first (behind fhirguard, often a health check with no
 * forwarded headers: {@code http://localhost/}). Here HAPI's cache is off
 * ({@code cacheMillis = 0}, so no refresh thread either) and the statement is cached for the
 * same minute under the base it was built for. The bases are few: fhirguard sets them.
 */
public class CapabilityStatementPerBase extends JpaCapabilityStatementProvider {

	private static final long CACHE_MILLIS = 60_000;
	private static final int MAX_BASES = 16;

	private record Cached(IBaseConformance statement, long expires) {}

	private final Map<String, Cached> myCache = new ConcurrentHashMap<>();

	public CapabilityStatementPerBase(
			RestfulServer theServer,
			IFhirSystemDao<?, ?> theSystemDao,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport) {
		super(theServer, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
	}

	@Override
	@Metadata(cacheMillis = 0)
	public IBaseConformance getServerConformance(HttpServletRequest theRequest, RequestDetails theRequestDetails) {
		String base = theRequestDetails.getFhirServerBase();
		long now = System.currentTimeMillis();
		boolean noCache = new CacheControlDirective()
				.parse(theRequestDetails.getHeaders(Constants.HEADER_CACHE_CONTROL))
				.isNoCache();
		Cached cached = noCache || base == null ? null : myCache.get(base);
		if (cached != null && cached.expires() > now) {
			return cached.statement();
		}
		IBaseConformance statement = super.getServerConformance(theRequest, theRequestDetails);
		if (base != null) {
			if (myCache.size() >= MAX_BASES) {
				myCache.clear();
			}
			myCache.put(base, new Cached(statement, now + CACHE_MILLIS));
		}
		return statement;
	}
}
