"""A C-ECHO + C-FIND SCP on Debian's odil 0.12 (python3-odil), run by /usr/bin/python3.

Our own code (tests/lab/odil.py starts it). It uses odil's *default* association acceptor, as
odil's own generic SCP example does: that acceptor accepts every proposed abstract syntax
(PS3.8 §9.3.3.2 result 0 for all, even a random 2.25 UID), although the SCP serves only C-ECHO
and C-FIND. That is the real-server behaviour issue 22 is about: storage and retrieve contexts
are accepted and never served.

argv: port records.json. The JSON holds synthetic study records (keyword -> value); every
C-FIND is answered with the records whose PatientID matches the request's, or all of them when
the request's PatientID is empty or absent. "ready" on stdout once listening is imminent.
"""

import contextlib
import json
import sys

import odil


def _text(data_set, tag):
    if not data_set.has(tag) or data_set.empty(tag):
        return ""
    values = data_set.as_string(tag)
    return values[0].decode() if isinstance(values[0], bytes) else str(values[0])


class Records(odil.FindSCP.DataSetGenerator):
    def __init__(self, records):
        odil.FindSCP.DataSetGenerator.__init__(self)
        self._all = records
        self._answers = []
        self._index = 0

    def initialize(self, request):
        asked = _text(request.get_data_set(), odil.registry.PatientID)
        self._answers = []
        for record in self._all:
            if asked and record.get("PatientID") != asked:
                continue
            answer = odil.DataSet()
            for keyword, value in record.items():
                tag = getattr(odil.registry, keyword)
                answer.add(tag, [value.encode()])
            answer.add(odil.registry.QueryRetrieveLevel, [b"STUDY"])
            self._answers.append(answer)
        self._index = 0

    def done(self):
        return self._index >= len(self._answers)

    def get(self):
        return self._answers[self._index]

    def next(self):
        self._index += 1


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    print("ready", flush=True)
    while True:
        association = odil.Association()
        association.receive_association("v4", port)  # odil binds 0.0.0.0
        # odil's Python binding cannot hand a FindSCP to SCPDispatcher.set_scp (its base
        # class is not exported), so this loop dispatches by command field (PS3.7 §9.3).
        echo = odil.EchoSCP(association)
        echo.set_callback(lambda request: 0)
        find = odil.FindSCP(association)
        generator = Records(records)  # kept referenced while the association lives
        find.set_generator(generator)
        command = odil.messages.Message.Command
        while True:
            try:
                message = association.receive_message()
                field = message.get_command_field()
                if field == command.C_ECHO_RQ:
                    echo(message)
                elif field == command.C_FIND_RQ:
                    find(message)
                else:  # what odil's dispatcher does with a command it has no SCP for
                    association.abort(2, 0)
                    break
            except (odil.AssociationReleased, odil.AssociationAborted):
                break
            except Exception:  # anything else: drop this association, keep serving
                with contextlib.suppress(Exception):
                    association.abort(2, 0)
                break


if __name__ == "__main__":
    main()
