// A Query/Retrieve SCP on dcmjs-dimse (npm), started by tests/lab/dimse_node.py.
// Usage: node scp.js PORT STUDIES.json
// It accepts any AE title (the exposed configuration a scanner must find), answers C-ECHO and
// Study Root C-FIND at STUDY level with the synthetic studies in STUDIES.json (one object per
// study: DICOM keywords -> values), and refuses everything else. Prints "READY <port>" once
// listening. Only synthetic data is ever loaded (tests make it with faker).
'use strict';
const fs = require('fs');
const dcmjsDimse = require('dcmjs-dimse');
const { Dataset, Server, Scp, log } = dcmjsDimse;
const { CEchoResponse, CFindResponse } = dcmjsDimse.responses;
const { Status, PresentationContextResult, TransferSyntax, SopClass } = dcmjsDimse.constants;

log.setLevel('silent'); // the library logs peers and data sets at info level

const port = Number(process.argv[2]);
const studies = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const ACCEPTED = new Set([SopClass.Verification, SopClass.StudyRootQueryRetrieveInformationModelFind]);
const SYNTAXES = new Set([TransferSyntax.ImplicitVRLittleEndian, TransferSyntax.ExplicitVRLittleEndian]);

class LabScp extends Scp {
  associationRequested(association) {
    association.getPresentationContexts().forEach((c) => {
      const context = association.getPresentationContext(c.id);
      if (!ACCEPTED.has(context.getAbstractSyntaxUid())) {
        context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        return;
      }
      const ts = context.getTransferSyntaxUids().find((t) => SYNTAXES.has(t));
      if (ts) {
        context.setResult(PresentationContextResult.Accept, ts);
      } else {
        context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
    });
    this.sendAssociationAccept();
  }

  cEchoRequest(request, callback) {
    const response = CEchoResponse.fromRequest(request);
    response.setStatus(Status.Success);
    callback(response);
  }

  cFindRequest(request, callback) {
    const asked = request.getDataset().getElements();
    const responses = [];
    if (asked.QueryRetrieveLevel === 'STUDY') {
      for (const study of studies) {
        const out = { QueryRetrieveLevel: 'STUDY' };
        for (const key of Object.keys(asked)) {
          if (key in study) out[key] = study[key];
        }
        const pending = CFindResponse.fromRequest(request);
        pending.setDataset(new Dataset(out));
        pending.setStatus(Status.Pending);
        responses.push(pending);
      }
    }
    const final = CFindResponse.fromRequest(request);
    final.setStatus(asked.QueryRetrieveLevel === 'STUDY' ? Status.Success : 0xa900);
    responses.push(final);
    callback(responses);
  }

  associationReleaseRequested() {
    this.sendAssociationReleaseResponse();
  }
}

const server = new Server(LabScp);
server.on('networkError', () => {});
server.listen(port);
process.stdout.write(`READY ${port}\n`);
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
