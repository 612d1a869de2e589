package org.fhirguard.hapi;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.MethodNotAllowedException;
import java.util.EnumSet;
import java.util.Set;

/**
 * Defence in depth for a read instance: refuses every interaction that is not a read before
 * HAPI touches the database. What really enforces read-only is the database role the instance
 * connects with (docs/hapi.md); this only turns a database error into a clean 405.
 *
 * Operations ($everything, $validate, $meta...) are refused too: several of them write, and a
 * read tier that needs one lists it here explicitly.
 */
@Interceptor
public class ReadOnlyGuard {

	static final Set<RestOperationTypeEnum> READS = EnumSet.of(
			RestOperationTypeEnum.METADATA,
			RestOperationTypeEnum.READ,
			RestOperationTypeEnum.VREAD,
			RestOperationTypeEnum.SEARCH_TYPE,
			RestOperationTypeEnum.SEARCH_SYSTEM,
			RestOperationTypeEnum.HISTORY_INSTANCE,
			RestOperationTypeEnum.HISTORY_TYPE,
			RestOperationTypeEnum.HISTORY_SYSTEM,
			RestOperationTypeEnum.GET_PAGE);

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_HANDLED)
	public void refuseWrites(RequestDetails theRequest, RestOperationTypeEnum op) {
		if (op == null || !READS.contains(op)) {
			throw new MethodNotAllowedException(
					"This FHIR server is read-only: " + (op == null ? "this request" : op.getCode()) + " is refused");
		}
	}
}
